package onion

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/tortest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests on a private Tor network on loopback (package tortest):
// one tor publishes the services, another dials them through its SOCKS
// port (with ExtendedErrors, the default of package process).

type e2eEnv struct {
	net      *tortest.Network
	svc, cli *launch.Tor
	dialer   *Dialer
}

func startE2E(t *testing.T) *e2eEnv {
	if testing.Short() {
		t.Skip("end-to-end tests need a private Tor network (skipped with -short)")
	}
	n := tortest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	tors := make([]*launch.Tor, 2)
	errs := make([]error, 2)
	start := time.Now()
	for i := range tors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tors[i], errs[i] = launch.Private(ctx, launch.Options{Network: n.ClientTorrc()})
		}()
	}
	wg.Wait()
	for i, tr := range tors {
		if tr != nil {
			t.Cleanup(func() { tr.Close() })
		}
		require.NoError(t, errs[i])
	}
	t.Logf("two tors bootstrapped in %v", time.Since(start).Round(time.Millisecond))
	sa, err := tors[1].SocksAddr(ctx)
	require.NoError(t, err)
	return &e2eEnv{net: n, svc: tors[0], cli: tors[1], dialer: NewDialer(sa)}
}

// dialRetry dials through tor, retrying a bounded number of times on the
// failures that happen while a fresh descriptor propagates (each retry is
// logged with its reason).
func dialRetry(ctx context.Context, t *testing.T, d *Dialer, addr string) (net.Conn, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, attempt
		}
		var se *SOCKSError
		if attempt < 8 && errors.As(err, &se) && se.Temporary() && ctx.Err() == nil {
			t.Logf("dial %s, attempt %d: %v; retrying", addr, attempt, err)
			select {
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		t.Fatalf("dial %s, attempt %d: %v", addr, attempt, err)
	}
}

// setSocksTimeout sets a client tor's SocksTimeout for the rest of the
// test, and restores it afterwards.
func setSocksTimeout(t *testing.T, c *control.Conn, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "SocksTimeout", Value: fmt.Sprint(int(d.Seconds()))}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.ResetConf(ctx, control.ConfEntry{Key: "SocksTimeout", Unset: true})
	})
}

// serveEcho echoes every connection of l until the test ends.
func serveEcho(t *testing.T, l net.Listener) {
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}

func TestEndToEnd(t *testing.T) {
	env := startE2E(t)
	svc := env.svc.Control()

	t.Run("Roundtrip1MB", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var progress []Progress
		start := time.Now()
		l, err := (&ListenConfig{Progress: func(p Progress) { progress = append(progress, p) }}).Listen(ctx, svc)
		require.NoError(t, err)
		published := time.Since(start)
		defer l.Close()
		last := progress[len(progress)-1]
		t.Logf("published %s in %v: %d descriptors, %d uploads, %d uploaded, %d failed",
			l.Addr(), published.Round(time.Millisecond), last.Descriptors, last.Uploads, last.Uploaded, last.Failed)
		assert.GreaterOrEqual(t, last.Descriptors, 2, "current and next time period")
		assert.Equal(t, 0, last.Pending())
		assert.GreaterOrEqual(t, last.Uploaded, 1)

		const size = 1 << 20
		serverGot := make(chan [32]byte, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			h := sha256.New()
			if _, err := io.CopyN(h, c, size); err != nil {
				return
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			serverGot <- sum
			io.CopyN(c, rand.Reader, size) // errors show up on the client side
		}()

		dialStart := time.Now()
		c, attempts := dialRetry(ctx, t, env.dialer, l.Addr().String())
		defer c.Close()
		t.Logf("first connection in %v (%d attempt(s))", time.Since(dialStart).Round(time.Millisecond), attempts)
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		up := make([]byte, size)
		rand.Read(up)
		xfer := time.Now()
		_, err = c.Write(up)
		require.NoError(t, err)
		assert.Equal(t, sha256.Sum256(up), <-serverGot, "1 MB reached the service intact")
		n, err := io.Copy(io.Discard, io.LimitReader(c, size))
		require.NoError(t, err)
		assert.EqualValues(t, size, n, "1 MB came back")
		el := time.Since(xfer)
		t.Logf("2 MB through the onion service in %v (%.1f MB/s)", el.Round(time.Millisecond), 2/el.Seconds())
	})

	t.Run("Concurrent50", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		l, err := (&ListenConfig{Ports: []int{80, 8080}}).Listen(ctx, svc)
		require.NoError(t, err)
		serveEcho(t, l)
		// Warm up: the descriptor and a rendezvous circuit.
		c, _ := dialRetry(ctx, t, env.dialer, l.Addr().String())
		c.Close()

		const n = 50
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				port := 80
				if i%2 == 1 {
					port = 8080
				}
				addr := net.JoinHostPort(l.Hostname(), fmt.Sprint(port))
				c, err := env.dialer.DialContext(ctx, "tcp", addr)
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Minute))
				msg := make([]byte, 16<<10)
				rand.Read(msg)
				if _, err := c.Write(msg); err != nil {
					errs <- fmt.Errorf("conn %d: write: %w", i, err)
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- fmt.Errorf("conn %d: read: %w", i, err)
					return
				}
				if sha256.Sum256(got) != sha256.Sum256(msg) {
					errs <- fmt.Errorf("conn %d: data corrupted", i)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d concurrent connections (16 KiB echoed each, ports 80 and 8080) in %v", n, time.Since(start).Round(time.Millisecond))
	})

	t.Run("HTTPClient", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		l, err := listenPorts(ctx, svc)
		require.NoError(t, err)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s%s", r.Host, r.URL.Path)
		})}
		go srv.Serve(l)
		defer srv.Close()
		client := env.dialer.HTTPClient()
		defer client.CloseIdleConnections()
		// Warm up with retries, then a plain request must work.
		c, _ := dialRetry(ctx, t, env.dialer, l.Addr().String())
		c.Close()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+l.Hostname()+"/page", nil)
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "hello from "+l.Hostname()+"/page", string(body))
	})

	t.Run("ClientAuth", func(t *testing.T) {
		// Probed on tor 0.4.9.11: the first fetch of a descriptor that
		// needs client authorization gives 0xF4 (no key) or 0xF5 (a wrong
		// key); a second dial right after gives 0x04, because tor does not
		// ask the same HSDir again for 15 minutes. So each case below is
		// the first dial of its service on the client tor.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		right, _ := GenerateClientKey(nil)
		wrong, _ := GenerateClientKey(nil)
		cli := env.cli.Control()
		listen := func() *Listener {
			l, err := (&ListenConfig{ClientAuth: []ClientPublicKey{right.Public()}}).Listen(ctx, svc)
			require.NoError(t, err)
			serveEcho(t, l)
			return l
		}

		// No key: tor fetches the descriptor but cannot decrypt it.
		l1 := listen()
		_, err := env.dialer.DialContext(ctx, "tcp", l1.Addr().String())
		require.Error(t, err)
		assert.ErrorIs(t, err, ReplyOnionMissingClientAuth)
		assert.ErrorIs(t, err, ErrOnionService)

		// A wrong key.
		l2 := listen()
		res, err := AddClientAuth(ctx, cli, ClientAuth{Address: l2.ServiceID(), Key: wrong})
		require.NoError(t, err)
		assert.Equal(t, ClientAuthAdded, res)
		_, err = env.dialer.DialContext(ctx, "tcp", l2.Addr().String())
		require.Error(t, err)
		assert.ErrorIs(t, err, ReplyOnionWrongClientAuth)
		assert.ErrorIs(t, err, ErrOnionService)

		// The right key decrypts the descriptor tor holds, and connects.
		res, err = AddClientAuth(ctx, cli, ClientAuth{Address: l2.ServiceID(), Key: right})
		require.NoError(t, err)
		assert.Equal(t, ClientAuthDecrypted, res)
		c, _ := dialRetry(ctx, t, env.dialer, l2.Addr().String())
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		_, err = c.Write([]byte("authorized"))
		require.NoError(t, err)
		got := make([]byte, len("authorized"))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		assert.Equal(t, "authorized", string(got))
		removed, err := RemoveClientAuth(ctx, cli, l2.ServiceID())
		require.NoError(t, err)
		assert.True(t, removed)
	})

	t.Run("SameKeyAgain", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		k, _ := GenerateKey(nil)
		for i := 0; i < 2; i++ {
			start := time.Now()
			l, err := (&ListenConfig{Key: k}).Listen(ctx, svc)
			require.NoError(t, err, "publication %d", i+1)
			assert.Equal(t, k.ServiceID(), l.ServiceID())
			t.Logf("publication %d of the same key in %v", i+1, time.Since(start).Round(time.Millisecond))
			serveEcho(t, l)
			c, _ := dialRetry(ctx, t, env.dialer.Isolated(), l.Addr().String())
			c.Close()
			require.NoError(t, l.Close())
		}
	})

	t.Run("DialAfterClose", func(t *testing.T) {
		// Probed on tor 0.4.9.11 (see the package notes): after DEL_ONION
		// the intro point still acknowledges the client's INTRODUCE1, but
		// no rendezvous follows, so tor answers the dial only when the
		// stream times out (SocksTimeout, 2 minutes by default) with 0x06.
		// The client tor's SocksTimeout is lowered to bound the wait. Tor
		// does not apply SocksTimeout to a service with PoW (it expects
		// the service to queue the request), so this service has PoW off;
		// TestEndToEndUnderAttack/PoWDialAfterClose has the PoW case.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		const socksTimeout = 10 * time.Second
		setSocksTimeout(t, env.cli.Control(), socksTimeout)
		l, err := (&ListenConfig{PoW: PoW{Mode: PoWOff}}).Listen(ctx, svc)
		require.NoError(t, err)
		serveEcho(t, l)
		c, _ := dialRetry(ctx, t, env.dialer, l.Addr().String())
		c.Close()
		require.NoError(t, l.Close())
		assert.NotContains(t, onionsCurrent(t, svc, "onions/current"), l.ServiceID())

		dctx, dcancel := context.WithTimeout(ctx, socksTimeout+time.Minute)
		defer dcancel()
		start := time.Now()
		_, err = env.dialer.Isolated().DialContext(dctx, "tcp", l.Addr().String())
		elapsed := time.Since(start)
		require.Error(t, err)
		t.Logf("dial after Close failed in %v: %v", elapsed.Round(time.Millisecond), err)
		require.NoError(t, dctx.Err(), "tor answered before the deadline")
		var se *SOCKSError
		require.ErrorAs(t, err, &se, "a typed SOCKS reply from tor")
		if !se.Code.IsOnionService() {
			assert.Equal(t, ReplyTTLExpired, se.Code, "tor's answer when no rendezvous follows")
			assert.True(t, se.Timeout())
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			assert.True(t, ne.Timeout())
		}
	})

	t.Run("DirServiceSurvivesRestart", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		setSocksTimeout(t, env.cli.Control(), 20*time.Second)
		dir := filepath.Join(t.TempDir(), "service")
		var first string
		for i := 1; i <= 2; i++ {
			tr, err := launch.Private(ctx, launch.Options{Network: env.net.ClientTorrc()})
			require.NoError(t, err)
			l, err := (&DirConfig{Dir: dir}).Listen(ctx, tr.Control())
			require.NoError(t, err, "tor %d", i)
			if i == 1 {
				first = l.ServiceID()
			} else {
				assert.Equal(t, first, l.ServiceID(), "the same address after a restart of tor")
			}
			serveEcho(t, l)
			c, attempts := dialRetry(ctx, t, env.dialer, l.Addr().String())
			t.Logf("tor %d: %s reached in %d attempt(s)", i, l.Addr(), attempts)
			echoRoundTrip(t, c)
			c.Close()
			require.NoError(t, l.Close())
			require.NoError(t, tr.Close())
		}
	})

	t.Run("SOCKSErrorsFromTor", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		d := env.dialer
		_, err := d.DialContext(ctx, "tcp", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion:80")
		assert.ErrorIs(t, err, ReplyOnionBadAddress)
		k, _ := GenerateKey(nil) // never published
		_, err = d.DialContext(ctx, "tcp", k.Hostname()+":80")
		assert.ErrorIs(t, err, ReplyOnionDescNotFound)
		var ne net.Error
		require.ErrorAs(t, err, &ne)

		l, err := listenPorts(ctx, svc, 80)
		require.NoError(t, err)
		defer l.Close()
		serveEcho(t, l)
		c, _ := dialRetry(ctx, t, d, l.Addr().String())
		c.Close()
		_, err = d.DialContext(ctx, "tcp", l.Hostname()+":81")
		assert.ErrorIs(t, err, ReplyConnectionRefused, "a port the service does not have")
	})

	t.Run("ResolveThroughTor", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d := env.dialer.Isolated()
		ip, err := d.Resolve(ctx, "127.0.0.1")
		require.NoError(t, err)
		assert.Equal(t, netip.MustParseAddr("127.0.0.1"), ip)
		ip, err = d.Resolve(ctx, "::1")
		require.NoError(t, err)
		assert.Equal(t, netip.MustParseAddr("::1"), ip)
		// The private network has no exits; an address mapping answers
		// without one.
		_, err = env.cli.Control().MapAddress(ctx, control.AddressMapping{From: "mapped.example", To: "192.0.2.44"})
		require.NoError(t, err)
		ip, err = d.Resolve(ctx, "mapped.example")
		require.NoError(t, err)
		assert.Equal(t, netip.MustParseAddr("192.0.2.44"), ip)
		_, err = d.Resolve(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onion")
		assert.ErrorIs(t, err, ReplyHostUnreachable, "tor does not resolve .onion names")
	})

	t.Run("StreamIsolation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		l, err := listenPorts(ctx, svc)
		require.NoError(t, err)
		serveEcho(t, l)
		sub, err := env.cli.Control().Subscribe(ctx, "STREAM")
		require.NoError(t, err)
		defer sub.Close()
		a, b := env.dialer.Isolated(), env.dialer.Isolated()
		// SOURCE_ADDR comes only with NEW; the circuit with SUCCEEDED.
		circOf := func(d *Dialer) string {
			c, _ := dialRetry(ctx, t, d, l.Addr().String())
			defer c.Close()
			src, id := c.LocalAddr().String(), ""
			for {
				select {
				case raw := <-sub.Events():
					p, _ := raw.Parsed()
					ev, ok := p.(*control.StreamEvent)
					switch {
					case !ok:
					case ev.Status == "NEW" && ev.SourceAddr == src:
						id = ev.ID
					case ev.Status == "SUCCEEDED" && id != "" && ev.ID == id:
						return ev.CircuitID
					}
				case <-ctx.Done():
					t.Fatal("no STREAM SUCCEEDED event for our connection")
				}
			}
		}
		a1, a2, b1 := circOf(a), circOf(a), circOf(b)
		assert.Equal(t, a1, a2, "one dialer's streams share a circuit")
		assert.NotEqual(t, a1, b1, "isolated dialers use different circuits")
	})
}
