package control_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	binecontrol "github.com/cretz/bine/control"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/internal/syncbuf"
	"github.com/gotorcon/tor/internal/testtor"
)

// sharedTor is one tor for the read-only integration tests and benchmarks.
var (
	sharedOnce sync.Once
	shared     *testtor.Tor
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

func sharedTorFor(tb testing.TB) *testtor.Tor {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = testtor.New(testtor.Options{}) })
	if sharedErr != nil {
		tb.Fatalf("testtor: %v", sharedErr)
	}
	return shared
}

// checkNoLeak fails t if a Conn's goroutines are still running a while
// after the test (they must all end with Close).
func checkNoLeak(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		leakcheck.Check(t, 5*time.Second, leakcheck.Running("control.(*Conn).readLoop", "control.(*Conn).writeLoop"))
	})
}

func TestRealConcurrentGetInfo(t *testing.T) {
	// Done when: 32 goroutines × 1,000 GETINFO against a real tor all succeed.
	checkNoLeak(t)
	tor := sharedTorFor(t)
	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want, err := c.GetInfo(ctx, "version", "config-file")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				keys := []string{"version", "config-file"}
				if i%2 == 1 {
					keys = keys[:1]
				}
				m, err := c.GetInfo(ctx, keys...)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d call %d: %w", g, i, err)
					return
				}
				if len(m) != len(keys) {
					errs <- fmt.Errorf("goroutine %d call %d: %d values for %d keys", g, i, len(m), len(keys))
					return
				}
				for j, k := range keys {
					if m[j] != want[j] {
						errs <- fmt.Errorf("goroutine %d call %d: %s = %q, want %q", g, i, k, m[j], want[j])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.NoError(t, c.Close())
}

func TestRealSubscriberThatNeverReads(t *testing.T) {
	// Done when: a subscriber that never reads its events does not delay a
	// GETINFO.
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{NoCookie: true})
	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stuck, err := c.SubscribeWith(ctx, control.SubscribeOptions{Buffer: 4}, "CONF_CHANGED")
	require.NoError(t, err)
	reader, err := c.Subscribe(ctx, "CONF_CHANGED")
	require.NoError(t, err)
	var received int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range reader.Events() {
			received++
		}
	}()
	const n = 200
	for i := 0; i < n; i++ {
		require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: fmt.Sprint("change ", i)}))
		_, err := c.GetInfoValue(ctx, "version")
		require.NoError(t, err)
	}
	// The stuck subscriber's buffer has been full for a long time; a GETINFO
	// still completes, and the other subscriber got every event.
	_, err = c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.Equal(t, uint64(n-4), stuck.Dropped())
	require.NoError(t, reader.Close())
	<-done
	assert.Equal(t, n, received)
	assert.Equal(t, uint64(0), reader.Dropped())
}

func TestRealInjectionRefused(t *testing.T) {
	// Done when: a SETCONF value containing "\r\nSIGNAL SHUTDOWN" reaches tor
	// as literal data of that one option and tor keeps running; the same
	// string as a GETINFO key or ADD_ONION target is refused before
	// anything is written.
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{NoCookie: true})
	nc, err := net.Dial("unix", tor.ControlSocket)
	require.NoError(t, err)
	var wire bytes.Buffer
	c := control.NewConn(controltest.Record(nc, &wire))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Authenticate(ctx))

	const evil = "\r\nSIGNAL SHUTDOWN"
	require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: evil}))
	got, err := c.GetConf(ctx, "ContactInfo")
	require.NoError(t, err)
	assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: evil}}, got)

	before := wire.String()
	_, err = c.GetInfo(ctx, evil)
	assert.ErrorIs(t, err, control.ErrInvalidArgument)
	_, err = c.GetInfo(ctx, "version"+evil)
	assert.ErrorIs(t, err, control.ErrInvalidArgument)
	_, err = c.AddOnion(ctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80, Target: evil}}})
	assert.ErrorIs(t, err, control.ErrInvalidArgument)
	_, err = c.AddOnion(ctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80, Target: "127.0.0.1:80" + evil}}})
	assert.ErrorIs(t, err, control.ErrInvalidArgument)
	assert.Equal(t, before, wire.String(), "nothing may be written for a refused command")

	v, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.NotEmpty(t, v)
	assert.True(t, tor.Running())
	assert.NotContains(t, wire.String(), "C: SIGNAL")
}

func TestRealDialTCPAndUnix(t *testing.T) {
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ep := range []struct{ network, addr string }{{"tcp", tor.ControlAddr}, {"unix", tor.ControlSocket}} {
		for _, auth := range [][]control.AuthOption{
			nil, // SAFECOOKIE
			{control.WithPassword("pw")},
			{control.WithPassword("pw"), control.WithAuthMethod(control.AuthHashedPassword)},
			{control.WithAuthMethod(control.AuthCookie)},
		} {
			c, err := control.Connect(ctx, ep.network, ep.addr, auth)
			require.NoError(t, err, ep.network)
			v, err := c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
			assert.NotEmpty(t, v)
			require.NoError(t, c.Close())
		}
		// A wrong password: the error says what was offered and tried.
		_, err := control.Connect(ctx, ep.network, ep.addr, []control.AuthOption{control.WithPassword("bad"), control.WithAuthMethod("HASHEDPASSWORD")})
		var ae *control.AuthError
		require.ErrorAs(t, err, &ae)
		assert.ErrorIs(t, err, control.ErrBadAuthentication)
		// A cookie file that is not 32 bytes is refused.
		bad := tor.Dir + "/bad_cookie"
		require.NoError(t, os.WriteFile(bad, []byte("short"), 0o600))
		_, err = control.Connect(ctx, ep.network, ep.addr, []control.AuthOption{control.WithCookieFile(bad), control.WithAuthMethod(control.AuthSafeCookie)})
		require.ErrorAs(t, err, &ae)
		assert.Contains(t, err.Error(), "not 32 bytes")
	}
}

func TestRealTorDies(t *testing.T) {
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{NoCookie: true})
	c := tor.Connect(t)
	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "CIRC")
	require.NoError(t, err)
	require.NoError(t, c.Signal(ctx, control.SignalHalt))
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed after tor exited")
	}
	_, err = c.GetInfoValue(ctx, "version")
	assert.ErrorIs(t, err, net.ErrClosed)
	_, open := <-sub.Events()
	assert.False(t, open)
	<-tor.Exited()
}

// writeSignal signals after each write that contains a marker.
type writeSignal struct {
	net.Conn
	marker  []byte
	written chan struct{}
}

func (w *writeSignal) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if bytes.Contains(p, w.marker) {
		w.written <- struct{}{}
	}
	return n, err
}

func TestRealCancelledAddOnionIsDeleted(t *testing.T) {
	// Cancel ADD_ONION commands right after they were written. Calls that
	// still succeed are deleted by the test; services of calls that were
	// cancelled must be deleted by the Conn when the late reply arrives.
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{NoCookie: true})
	nc, err := net.Dial("unix", tor.ControlSocket)
	require.NoError(t, err)
	var wire syncbuf.Buffer
	ws := &writeSignal{Conn: controltest.Record(nc, &wire), marker: []byte("ADD_ONION"), written: make(chan struct{}, 1)}
	c := control.NewConn(ws)
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Authenticate(ctx))
	cancelled := 0
	for i := 0; i < 40; i++ {
		cctx, cancel := context.WithCancel(ctx)
		call := make(chan error, 1)
		var id string
		go func() {
			r, err := c.AddOnion(cctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80}}, Flags: []string{control.FlagDetach}})
			if err == nil {
				id = r.ServiceID
			}
			call <- err
		}()
		<-ws.written
		cancel()
		if err := <-call; err != nil {
			require.ErrorIs(t, err, context.Canceled)
			cancelled++
			continue
		}
		require.NoError(t, c.DelOnion(ctx, id))
	}
	// When the reply to this GETINFO arrives, every late ADD_ONION reply has
	// arrived before it and its DEL_ONION has been queued; the next command
	// goes after them.
	_, err = c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	ids, err := c.GetInfoValue(ctx, "onions/detached")
	require.NoError(t, err)
	assert.Empty(t, ids, "services of cancelled ADD_ONION calls leaked")
	t.Logf("%d of 40 calls were cancelled after being written", cancelled)
	assert.Equal(t, 40, strings.Count(wire.String(), "C: DEL_ONION "))
	assert.True(t, tor.Running())
}

// ---- Benchmarks against the real tor, over the unix socket ----

func benchConn(b *testing.B) *control.Conn {
	tor := sharedTorFor(b)
	c := tor.Connect(b)
	return c
}

// BenchmarkRealGetInfoSequential is one GETINFO round trip at a time.
func BenchmarkRealGetInfoSequential(b *testing.B) {
	c := benchConn(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetInfoValue(ctx, "version"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRealGetInfoPipelined runs GETINFO from G goroutines at once
// (G=1: one goroutine keeping 64 commands in flight with Start/Wait).
func BenchmarkRealGetInfoPipelined(b *testing.B) {
	for _, g := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			c := benchConn(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			if g == 1 {
				const window = 64
				calls := make([]*control.Call, 0, window)
				for i := 0; i < b.N; i++ {
					call, err := c.Start("GETINFO version")
					if err != nil {
						b.Fatal(err)
					}
					calls = append(calls, call)
					if len(calls) == window || i == b.N-1 {
						for _, call := range calls {
							if _, err := call.Wait(ctx); err != nil {
								b.Fatal(err)
							}
						}
						calls = calls[:0]
					}
				}
				return
			}
			var wg sync.WaitGroup
			per := (b.N + g - 1) / g
			for i := 0; i < g; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < per; j++ {
						if _, err := c.GetInfoValue(ctx, "version"); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// rawConn is a hand-written client with no parsing: the baseline.
func rawConn(b *testing.B) (net.Conn, *bufio.Reader) {
	tor := sharedTorFor(b)
	nc, err := net.Dial("unix", tor.ControlSocket)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	br := bufio.NewReader(nc)
	fmt.Fprintf(nc, "AUTHENTICATE %x\r\n", mustRead(b, tor.CookieFile))
	if l, _ := br.ReadString('\n'); l != "250 OK\r\n" {
		b.Fatalf("raw auth: %q", l)
	}
	return nc, br
}

func mustRead(b *testing.B, p string) []byte {
	d, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func rawReadReply(b *testing.B, br *bufio.Reader) {
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if len(l) > 3 && l[3] == ' ' {
			return
		}
	}
}

// BenchmarkRawGetInfoSequential and BenchmarkRawGetInfoPipelined measure
// tor itself with a minimal client, for comparison.
func BenchmarkRawGetInfoSequential(b *testing.B) {
	nc, br := rawConn(b)
	cmd := []byte("GETINFO version\r\n")
	for b.Loop() {
		nc.Write(cmd)
		rawReadReply(b, br)
	}
}

func BenchmarkRawGetInfoPipelined(b *testing.B) {
	for _, window := range []int{16, 64} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			nc, br := rawConn(b)
			batch := bytes.Repeat([]byte("GETINFO version\r\n"), window)
			b.ResetTimer()
			for i := 0; i < b.N; i += window {
				n := min(window, b.N-i)
				nc.Write(batch[:n*len("GETINFO version\r\n")])
				for j := 0; j < n; j++ {
					rawReadReply(b, br)
				}
			}
		})
	}
}

// BenchmarkBineGetInfoSequential is the same round trip with
// github.com/cretz/bine/control v0.2.0, for comparison. (bine serializes
// commands; its concurrent use is not benchmarked because it can deadlock.)
func BenchmarkBineGetInfoSequential(b *testing.B) {
	tor := sharedTorFor(b)
	nc, err := net.Dial("unix", tor.ControlSocket)
	if err != nil {
		b.Fatal(err)
	}
	bc := binecontrol.NewConn(textproto.NewConn(nc))
	b.Cleanup(func() { nc.Close() })
	if err := bc.Authenticate(""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bc.GetInfo("version"); err != nil {
			b.Fatal(err)
		}
	}
}
