package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/internal/syncbuf"
)

// checkNoLeak fails t if a Conn's goroutines are still running a while
// after the test (they must all end with Close).
func checkNoLeak(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		leakcheck.Check(t, 5*time.Second, leakcheck.Running("control.(*Conn).readLoop", "control.(*Conn).writeLoop"))
	})
}

// fake connects a Conn to a handler over an in-memory pipe.
func fake(t *testing.T, h func(s *controltest.Conn), opts ...Option) *Conn {
	t.Helper()
	checkNoLeak(t)
	cli, srv := net.Pipe()
	sc := controltest.NewConn(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		h(sc)
	}()
	c := NewConn(cli, opts...)
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// echoHandler answers GETINFO k with k=k, SETEVENTS and everything else
// with 250 OK, until the client closes.
func echoHandler(s *controltest.Conn) {
	for {
		cmd, err := s.ReadCommand()
		if err != nil {
			return
		}
		switch cmd.Keyword {
		case "GETINFO":
			var lines []string
			for _, k := range strings.Fields(cmd.Args) {
				if k == "events/names" {
					lines = append(lines, "250-events/names=CIRC BW CONF_CHANGED STATUS_CLIENT NOTICE")
					continue
				}
				lines = append(lines, "250-"+k+"="+k)
			}
			s.Reply(append(lines, "250 OK")...)
		default:
			s.Reply("250 OK")
		}
	}
}

func TestPipelinedConcurrentCommands(t *testing.T) {
	c := fake(t, echoHandler)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := fmt.Sprintf("key-%d-%d", g, i)
				m, err := c.GetInfo(ctx, k, "x")
				if err != nil {
					errs <- err
					return
				}
				if len(m) != 2 || m[0] != k || m[1] != "x" {
					errs <- fmt.Errorf("got %v for %s", m, k)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// countingConn counts writes and can hold the first one.
type countingConn struct {
	net.Conn
	writes  atomic.Int32
	first   chan struct{} // closed when the first write starts
	release chan struct{} // the first write proceeds when closed
	once    sync.Once
}

func (cc *countingConn) Write(p []byte) (int, error) {
	if cc.writes.Add(1) == 1 {
		close(cc.first)
		<-cc.release
	}
	return cc.Conn.Write(p)
}

func TestWritesAreCoalesced(t *testing.T) {
	checkNoLeak(t)
	cli, srv := net.Pipe()
	cc := &countingConn{Conn: cli, first: make(chan struct{}), release: make(chan struct{})}
	sc := controltest.NewConn(srv)
	go echoHandler(sc)
	defer sc.Close()
	c := NewConn(cc)
	defer c.Close()
	ctx := context.Background()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = c.GetInfo(ctx, "first") }()
	<-cc.first // the writer is now busy with the first command
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.GetInfo(ctx, fmt.Sprint("k", i)) }()
	}
	for {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 50 {
			break
		}
		runtime.Gosched()
	}
	close(cc.release)
	wg.Wait()
	assert.Equal(t, int32(2), cc.writes.Load(), "50 queued commands should go out in one write")
}

func TestCancelBeforeWriteIsNeverWritten(t *testing.T) {
	checkNoLeak(t)
	cli, srv := net.Pipe()
	cc := &countingConn{Conn: cli, first: make(chan struct{}), release: make(chan struct{})}
	sc := controltest.NewConn(srv)
	var seen []string
	handlerDone := make(chan struct{})
	go func() {
		defer close(handlerDone)
		for {
			cmd, err := sc.ReadCommand()
			if err != nil {
				return
			}
			seen = append(seen, cmd.Line)
			sc.Reply("250-" + cmd.Args + "=v")
			sc.Reply("250 OK")
		}
	}()
	c := NewConn(cc)
	ctx := context.Background()
	res := make(chan error, 1)
	go func() { _, err := c.GetInfoValue(ctx, "first"); res <- err }()
	<-cc.first
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			c.mu.Lock()
			n := len(c.queue)
			c.mu.Unlock()
			if n == 1 {
				cancel()
				return
			}
			runtime.Gosched()
		}
	}()
	_, err := c.GetInfoValue(cctx, "cancelled")
	assert.ErrorIs(t, err, context.Canceled)
	close(cc.release)
	require.NoError(t, <-res)
	m, err := c.GetInfoValue(ctx, "after")
	require.NoError(t, err)
	assert.Equal(t, "v", m)
	c.Close()
	sc.Close()
	<-handlerDone
	assert.Equal(t, []string{"GETINFO first", "GETINFO after"}, seen)
}

func TestCancelAfterWriteKeepsStreamInSync(t *testing.T) {
	checkNoLeak(t)
	srv, tr := controltest.NewTranscriptServer(t, "../testdata/control/unit_cancel.txt")
	c, err := Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { _, err := c.GetInfoValue(ctx, "version"); res <- err }()
	// Wait until the command is written, then cancel: the call returns at
	// once although tor has not answered.
	for !c.hasPending() {
		runtime.Gosched()
	}
	cancel()
	assert.ErrorIs(t, <-res, context.Canceled)
	tr.Release("reply")
	// The late reply is dropped; the next command gets its own reply.
	v, err := c.GetInfoValue(context.Background(), "config-file")
	require.NoError(t, err)
	assert.Equal(t, "/etc/tor/torrc", v)
}

func (c *Conn) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}

func TestCancelledAddOnionIsDeleted(t *testing.T) {
	gotAdd := make(chan struct{})
	replyNow := make(chan struct{})
	gotDel := make(chan string, 1)
	c := fake(t, func(s *controltest.Conn) {
		cmd, err := s.ReadCommand()
		if err != nil || cmd.Keyword != "ADD_ONION" {
			return
		}
		close(gotAdd)
		<-replyNow
		s.Reply("250-ServiceID=kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd",
			"250-PrivateKey=ED25519-V3:aJ5vPTsTth2+SUWAS8vILW8Rkz4SqF7TMAWE9yoEOUEUc2m39AYbrb5uKDnHTs7H+S8bGg1S82nwWI32jugYBA==", "250 OK")
		cmd, err = s.ReadCommand()
		if err == nil {
			gotDel <- cmd.Line
			s.Reply("250 OK")
		}
		s.ReadLine()
	})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := c.AddOnion(ctx, &AddOnionRequest{Ports: []OnionPort{{VirtPort: 80}}})
		res <- err
	}()
	<-gotAdd
	cancel()
	assert.ErrorIs(t, <-res, context.Canceled)
	close(replyNow)
	select {
	case line := <-gotDel:
		assert.Equal(t, "DEL_ONION kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd", line)
	case <-time.After(10 * time.Second):
		t.Fatal("the service of the cancelled ADD_ONION was not deleted")
	}
}

func TestCloseFailsPendingCalls(t *testing.T) {
	gotCmd := make(chan struct{})
	c := fake(t, func(s *controltest.Conn) {
		s.ReadCommand()
		close(gotCmd)
		s.ReadLine() // never answers
	})
	res := make(chan error, 1)
	go func() { _, err := c.GetInfoValue(context.Background(), "version"); res <- err }()
	<-gotCmd
	require.NoError(t, c.Close())
	err := <-res
	assert.ErrorIs(t, err, net.ErrClosed)
	var ce *ClosedError
	assert.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, c.Err(), net.ErrClosed)
	<-c.Done()
	_, err = c.GetInfoValue(context.Background(), "version")
	assert.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, c.Close()) // idempotent
}

func TestTorClosingFailsPendingCalls(t *testing.T) {
	c := fake(t, func(s *controltest.Conn) {
		s.ReadCommand()
		s.Reply("250-version=1") // cut short: tor dies mid-reply
	})
	_, err := c.GetInfoValue(context.Background(), "version")
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	<-c.Done()
	assert.ErrorIs(t, c.Err(), io.ErrUnexpectedEOF)
}

func TestProtocolErrorBreaksConnection(t *testing.T) {
	for name, wire := range map[string]string{
		"bad prefix":       "HTTP/1.0 501 Tor ControlPort is not an HTTP proxy",
		"unexpected reply": "250 OK\r\n250 OK",
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(s *controltest.Conn) {
				s.ReadCommand()
				s.Reply(wire)
				s.ReadLine()
			})
			_, err := c.Request(context.Background(), "GETINFO version")
			if name == "bad prefix" {
				assert.ErrorIs(t, err, ErrProtocol)
				assert.ErrorIs(t, err, net.ErrClosed)
			} else {
				assert.NoError(t, err) // the first "250 OK" answers GETINFO
			}
			<-c.Done()
			assert.ErrorIs(t, c.Err(), ErrProtocol)
		})
	}
}

func TestMaxReplySize(t *testing.T) {
	c := fake(t, func(s *controltest.Conn) {
		s.ReadCommand()
		s.Reply("250-k="+strings.Repeat("x", 5000), "250 OK")
		s.ReadLine()
	}, WithMaxReplySize(1000))
	_, err := c.GetInfoValue(context.Background(), "k")
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestEventsBetweenCommandAndReply(t *testing.T) {
	srv, _ := controltest.NewTranscriptServer(t, "../testdata/control/unit_events.txt")
	checkNoLeak(t)
	c, err := Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	all, err := c.Subscribe(ctx, "BW", "NS", "CONF_CHANGED", "NOTICE", "STATUS_CLIENT", "HS_DESC_CONTENT", "CIRC")
	require.NoError(t, err)
	bw, err := c.SubscribeWith(ctx, SubscribeOptions{Buffer: 1}, "bw")
	require.NoError(t, err)

	v, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.Equal(t, "0.4.9.11", v)

	var types []string
	for len(types) < 9 {
		ev := <-all.Events()
		types = append(types, ev.Type)
		_, err := parseEvent(ev)
		if ev.Type == "CIRC" && strings.Contains(ev.Text(), "MALFORMED") {
			assert.ErrorIs(t, err, ErrMalformedEvent)
		} else {
			assert.NoError(t, err, ev.String())
		}
	}
	assert.Equal(t, []string{"BW", "BW", "NS", "CONF_CHANGED", "NOTICE", "BW", "STATUS_CLIENT", "HS_DESC_CONTENT", "CIRC"}, types)
	// One more CIRC after the malformed one: events keep flowing.
	ev := <-all.Events()
	ce, err := parseCircEvent(ev)
	require.NoError(t, err)
	assert.Equal(t, "BUILT", ce.Status)
	assert.Equal(t, uint64(0), all.Dropped())
	// bw has room for one event: the first is kept, the others dropped.
	ev = <-bw.Events()
	assert.Equal(t, "BW 1 2", ev.Lines[0].Text)
	assert.Equal(t, uint64(1), bw.Dropped())
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	const n = 5000
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Keyword {
			case "GETINFO":
				if cmd.Args == "events/names" {
					s.Reply("250-events/names=BW CIRC", "250 OK")
					continue
				}
				// A flood of events before the reply.
				var b strings.Builder
				for i := 0; i < n; i++ {
					fmt.Fprintf(&b, "650 BW %d 0\r\n", i)
				}
				b.WriteString("250-version=x\r\n250 OK\r\n")
				s.Write([]byte(b.String()))
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	stuck, err := c.SubscribeWith(ctx, SubscribeOptions{Buffer: 10}, "BW")
	require.NoError(t, err)
	latest, err := c.SubscribeWith(ctx, SubscribeOptions{Buffer: 10, DropOldest: true}, "BW")
	require.NoError(t, err)
	other, err := c.SubscribeWith(ctx, SubscribeOptions{Buffer: n}, "BW")
	require.NoError(t, err)
	_, err = c.GetInfoValue(ctx, "version") // returns although two subscribers never read
	require.NoError(t, err)
	assert.Equal(t, uint64(n-10), stuck.Dropped())
	assert.Equal(t, uint64(n-10), latest.Dropped())
	assert.Equal(t, uint64(0), other.Dropped())
	assert.Len(t, other.Events(), n)
	first := <-stuck.Events()
	assert.Equal(t, "BW 0 0", first.Lines[0].Text)
	newest := <-latest.Events()
	assert.Equal(t, fmt.Sprintf("BW %d 0", n-10), newest.Lines[0].Text)
}

func TestSubscribe(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			mu.Lock()
			lines = append(lines, cmd.Line)
			mu.Unlock()
			switch {
			case cmd.Line == "GETINFO events/names":
				s.Reply(`552 Unrecognized key "events/names"`) // an old tor
			case strings.Contains(cmd.Line, "FAILME"):
				s.Reply(`552 Unrecognized event "FAILME"`)
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	_, err := c.Subscribe(ctx)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = c.Subscribe(ctx, "BW\r\nSIGNAL SHUTDOWN")
	assert.ErrorIs(t, err, ErrInvalidArgument)

	a, err := c.Subscribe(ctx, "circ", "BW", "bw")
	require.NoError(t, err)
	assert.Equal(t, []string{"BW", "CIRC"}, a.Names())
	b, err := c.Subscribe(ctx, "BW") // already in the mask: no SETEVENTS
	require.NoError(t, err)
	_, err = c.Subscribe(ctx, "FAILME") // tor refuses: the names check was skipped
	assert.ErrorIs(t, err, ErrUnrecognizedEntity)
	d, err := c.Subscribe(ctx, "STREAM") // resent after the failure
	require.NoError(t, err)
	require.NoError(t, a.Close())
	require.NoError(t, d.Close())
	require.NoError(t, b.Close())
	require.NoError(t, c.SetEvents(ctx, "CIRC"))
	require.ErrorIs(t, c.SetEvents(ctx, "A B"), ErrInvalidArgument)
	_, err = c.Request(ctx, "GETINFO version") // a round trip after the async SETEVENTS
	require.NoError(t, err)
	mu.Lock()
	assert.Equal(t, []string{
		"GETINFO events/names",
		"SETEVENTS BW CIRC",
		"SETEVENTS BW CIRC FAILME",
		"SETEVENTS BW CIRC", // restores the mask after the failure
		"SETEVENTS BW CIRC STREAM",
		"SETEVENTS BW STREAM",
		"SETEVENTS BW",
		"SETEVENTS",
		"SETEVENTS CIRC",
		"GETINFO version",
	}, lines)
	mu.Unlock()

	// Subscribing on a closed connection fails; closing subscriptions after
	// the connection is harmless.
	e, err := c.Subscribe(ctx, "BW")
	require.NoError(t, err)
	c.Close()
	_, open := <-e.Events()
	assert.False(t, open)
	assert.NoError(t, e.Close())
	_, err = c.Subscribe(ctx, "BW")
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestSubscribeCancelled(t *testing.T) {
	gotSetEvents := make(chan struct{})
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Keyword {
			case "GETINFO":
				s.Reply("250-events/names=BW", "250 OK")
			case "SETEVENTS":
				if cmd.Args == "BW" {
					close(gotSetEvents)
					continue // no answer yet
				}
				s.Reply("250 OK")
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { _, err := c.Subscribe(ctx, "BW"); res <- err }()
	<-gotSetEvents
	cancel()
	assert.ErrorIs(t, <-res, context.Canceled)
	c.subsMu.RLock()
	assert.Empty(t, c.subs)
	c.subsMu.RUnlock()
}

func TestRequestValidation(t *testing.T) {
	c := fake(t, echoHandler)
	ctx := context.Background()
	for _, f := range []func() error{
		func() error { _, err := c.Request(ctx, "GETINFO a\nb"); return err },
		func() error { _, err := c.Request(ctx, ""); return err },
		func() error { _, err := c.RequestData(ctx, "+LOADCONF\n", "x"); return err },
		func() error { _, err := c.RequestData(ctx, "+LOADCONF", "x\x00"); return err },
		func() error { _, err := c.GetInfo(ctx); return err },
		func() error { _, err := c.MapAddress(ctx); return err },
		func() error { _, err := c.MapAddress(ctx, AddressMapping{From: "a", To: "b c"}); return err },
		func() error { _, err := c.ExtendCircuit(ctx, "0 1", nil, ""); return err },
		func() error { _, err := c.ExtendCircuit(ctx, "0", []string{"a,b"}, ""); return err },
		func() error { _, err := c.ExtendCircuit(ctx, "0", []string{"a b"}, ""); return err },
		func() error { _, err := c.ExtendCircuit(ctx, "0", nil, "x y"); return err },
		func() error { return c.SetCircuitPurpose(ctx, "1 2", "x") },
		func() error { return c.SetCircuitPurpose(ctx, "1", "x\n") },
		func() error { return c.AttachStream(ctx, "", "1", 0) },
		func() error { return c.AttachStream(ctx, "1", "", 0) },
		func() error { return c.RedirectStream(ctx, "1 ", "a", 0) },
		func() error { return c.RedirectStream(ctx, "1", "a b", 0) },
		func() error { return c.CloseStream(ctx, "1\r\n", 1) },
		func() error { return c.CloseCircuit(ctx, "", false) },
		func() error { return c.PostDescriptor(ctx, "x", "a b", "") },
		func() error { return c.PostDescriptor(ctx, "x", "", "a b") },
		func() error { return c.UseFeature(ctx, "A B") },
		func() error { return c.Resolve(ctx, false) },
		func() error { return c.Resolve(ctx, true, "a\nb") },
		func() error { return c.HSFetch(ctx, "a b") },
		func() error { return c.HSFetch(ctx, "abc", "SERVER X") },
		func() error { return c.HSPost(ctx, "d", "", "a b") },
		func() error { return c.HSPost(ctx, "d", "a b") },
		func() error { return c.DelOnion(ctx, "x\r\nSIGNAL SHUTDOWN") },
		func() error {
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: "a b", PrivateKey: "k"})
			return err
		},
		func() error {
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: "a", PrivateKey: "k k"})
			return err
		},
		func() error {
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: "a", KeyType: "x=", PrivateKey: "k"})
			return err
		},
		func() error {
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: "a", PrivateKey: "k", ClientName: "a b"})
			return err
		},
		func() error {
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: "a", PrivateKey: "k", Flags: []string{"a b"}})
			return err
		},
		func() error { _, err := c.OnionClientAuthRemove(ctx, ""); return err },
		func() error { _, err := c.OnionClientAuthView(ctx, "a b"); return err },
		func() error { return c.Signal(ctx, "") },
	} {
		assert.ErrorIs(t, f(), ErrInvalidArgument)
	}
	// Nothing was written: the next command gets the first reply.
	m, err := c.GetInfoValue(ctx, "ok")
	require.NoError(t, err)
	assert.Equal(t, "ok", m)

	// Successful simple commands.
	require.NoError(t, c.Resolve(ctx, true, "1.2.3.4"))
	require.NoError(t, c.AttachStream(ctx, "1", "2", 0))
	require.NoError(t, c.RedirectStream(ctx, "1", "a", 0))
	require.NoError(t, c.HSFetch(ctx, "abc.onion", "FP1"))
	require.NoError(t, c.HSPost(ctx, "desc", "abc.onion", "FP1"))
	require.NoError(t, c.PostDescriptor(ctx, "desc", "", ""))
	require.NoError(t, c.SetCircuitPurpose(ctx, "1", "general"))
	_, err = c.ExtendCircuit(ctx, "0", nil, "") // "250 OK" is not "EXTENDED id"
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.GetInfoValue(ctx, "events/names")
	require.NoError(t, err)
	_, err = c.OnionClientAuthView(ctx, "")
	require.NoError(t, err)
}

func TestDial(t *testing.T) {
	checkNoLeak(t)
	_, err := Dial(context.Background(), "unix", "/nonexistent/socket")
	assert.Error(t, err)
	assert.Contains(t, err.Error(), "control: dial unix /nonexistent/socket")
	_, err = Connect(context.Background(), "unix", "/nonexistent/socket", nil)
	assert.Error(t, err)

	srv := controltest.NewUnixServer(controltest.HandlerFunc(func(s *controltest.Conn) {
		cmd, _ := s.ReadCommand()
		if cmd != nil && cmd.Keyword == "PROTOCOLINFO" {
			s.Reply("250-PROTOCOLINFO 1", "250-AUTH METHODS=HASHEDPASSWORD", "250 OK")
		}
		s.ReadLine()
	}))
	defer srv.Close()
	_, err = Connect(context.Background(), srv.Network, srv.Addr, nil)
	var ae *AuthError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "", ae.Method)
	assert.EqualError(t, err, "control: authentication failed (tor offers HASHEDPASSWORD; tried no usable method): no password given")
}

func TestGetInfoMalformedReplies(t *testing.T) {
	c := fake(t, func(s *controltest.Conn) {
		s.ReadCommand()
		s.Reply("250-novalue", "250 OK")
		s.ReadCommand()
		s.Reply("250-other=1", "250 OK")
		s.ReadCommand()
		s.Reply(`250 ContactInfo="unterminated`)
		s.ReadCommand()
		s.Reply("250 OK")
		s.ReadCommand()
		s.Reply("250-CLIENT", "250 OK")
		s.ReadCommand()
		s.Reply(`250-CLIENT a x25519:k ClientName="unterminated`, "250 OK")
		s.ReadLine()
	})
	ctx := context.Background()
	_, err := c.GetInfoValue(ctx, "novalue")
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.GetInfoValue(ctx, "missing")
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.GetConf(ctx, "ContactInfo")
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.AddOnion(ctx, &AddOnionRequest{Ports: []OnionPort{{VirtPort: 1}}})
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = c.OnionClientAuthView(ctx, "")
	assert.NoError(t, err) // "CLIENT" without a space is not a credential line
	_, err = c.OnionClientAuthView(ctx, "")
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestLateReplyOfFailedAddOnionIsIgnored(t *testing.T) {
	gotAdd := make(chan struct{})
	replyNow := make(chan string)
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			if cmd.Keyword == "ADD_ONION" {
				gotAdd <- struct{}{}
				s.Reply(<-replyNow)
				continue
			}
			s.Reply("250-" + cmd.Args + "=1")
			s.Reply("250 OK")
		}
	})
	for _, reply := range []string{"512 Invalid VIRTPORT/TARGET", "250 OK"} {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() {
			_, err := c.AddOnion(ctx, &AddOnionRequest{Ports: []OnionPort{{VirtPort: 80}}})
			res <- err
		}()
		<-gotAdd
		cancel()
		assert.ErrorIs(t, <-res, context.Canceled)
		replyNow <- reply
		// No DEL_ONION follows: the next command is answered normally.
		m, err := c.GetInfoValue(context.Background(), "x")
		require.NoError(t, err)
		assert.Equal(t, "1", m)
	}
}

func TestWriteErrorEndsConnection(t *testing.T) {
	checkNoLeak(t)
	cli, srv := net.Pipe()
	srv.Close()
	c := NewConn(cli, WithLogger(nil))
	defer c.Close()
	_, err := c.GetInfoValue(context.Background(), "version")
	assert.ErrorIs(t, err, net.ErrClosed)
	<-c.Done()
	assert.True(t, errors.Is(c.Err(), io.ErrClosedPipe) || errors.Is(c.Err(), io.EOF), "%v", c.Err())
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestEventWithoutTypeIsReported(t *testing.T) {
	var logs syncbuf.Buffer
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Keyword {
			case "GETINFO":
				if cmd.Args == "events/names" {
					s.Reply("250-events/names=BW", "250 OK")
					continue
				}
				s.Reply("650 ", "650 BW 1 1", "250-version=1", "250 OK")
			default:
				s.Reply("250 OK")
			}
		}
	}, WithLogger(newTestLogger(&logs)))
	sub, err := c.Subscribe(context.Background(), "BW")
	require.NoError(t, err)
	_, err = c.GetInfoValue(context.Background(), "version")
	require.NoError(t, err)
	ev := <-sub.Events()
	assert.Equal(t, "BW", ev.Type)
	assert.Contains(t, logs.String(), "dropped an event without a type")
}

func TestSubscribeRetriesAfterAnotherSetEventsFailed(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	failNext := false
	c := fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			mu.Lock()
			lines = append(lines, cmd.Line)
			fail := failNext && cmd.Keyword == "SETEVENTS"
			if fail {
				failNext = false
			}
			mu.Unlock()
			switch {
			case cmd.Keyword == "GETINFO":
				s.Reply("250-events/names=BW CIRC", "250 OK")
			case fail:
				s.Reply("451 busy")
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	a, err := c.Subscribe(ctx, "BW")
	require.NoError(t, err)
	defer a.Close()
	b, err := c.Subscribe(ctx, "BW", "CIRC")
	require.NoError(t, err)
	mu.Lock()
	failNext = true
	mu.Unlock()
	require.NoError(t, b.Close()) // its SETEVENTS BW fails
	d, err := c.Subscribe(ctx, "BW")
	require.NoError(t, err)
	defer d.Close()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"GETINFO events/names", "SETEVENTS BW", "SETEVENTS BW CIRC", "SETEVENTS BW", "SETEVENTS BW"}, lines)
}

// TestBigGetInfoNotCopied: a big GETINFO value is handed to the caller as
// read, not copied out of a reused buffer (a second copy would double the
// memory of a reply like ns/all).
func TestBigGetInfoNotCopied(t *testing.T) {
	big := strings.Repeat("r relay 0123456789\n", 20000)
	wire := []byte(strings.Join(append(append([]string{"250+ns/all="}, controltest.DataBlock(big)...), "250 OK"), "\r\n") + "\r\n")
	c := fake(t, func(s *controltest.Conn) {
		for {
			if _, err := s.ReadLine(); err != nil {
				return
			}
			s.Write(wire) // the fake allocates nothing per reply
		}
	})
	ctx := context.Background()
	for i := 0; i < 3; i++ { // warm the pool
		v, err := c.GetInfoValue(ctx, "ns/all")
		require.NoError(t, err)
		require.Equal(t, strings.TrimSuffix(big, "\n"), v)
	}
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	m, err := c.GetInfoValue(ctx, "ns/all")
	runtime.ReadMemStats(&b)
	require.NoError(t, err)
	require.Equal(t, strings.TrimSuffix(big, "\n"), m)
	assert.Less(t, b.TotalAlloc-a.TotalAlloc, uint64(2.5*float64(len(big))), "read in chunks, joined once, not copied again")
}

// GETINFO values come back in the order of the keys; tor echoes each key as
// asked and in order, so a reply that does not is a protocol error, never a
// value filed under the wrong key.
func TestGetInfoKeyOrder(t *testing.T) {
	c := fake(t, func(s *controltest.Conn) {
		cmd, _ := s.ReadCommand()
		if assert.Equal(t, "version config-file net/listeners/socks", cmd.Args) {
			s.Reply("250-version=0.4.9.11", "250-config-file=/tmp/torrc",
				`250-net/listeners/socks="127.0.0.1:9050"`, "250 OK")
		}
		s.ReadCommand()
		s.Reply("250-b=2", "250-a=1", "250 OK") // swapped
		s.ReadCommand()
		s.Reply("250-a=1", "250 OK") // b missing
		s.ReadCommand()
		s.Reply("250-a=1", "250-b=2", "250 OK") // one more than asked
		s.ReadCommand()
		s.Reply("250+a=", "line 1", "line 2", ".", "250-b=2", "250 OK")
		s.ReadLine()
	})
	ctx := context.Background()
	v, err := c.GetInfo(ctx, "version", "config-file", "net/listeners/socks")
	require.NoError(t, err)
	assert.Equal(t, []string{"0.4.9.11", "/tmp/torrc", `"127.0.0.1:9050"`}, v)

	_, err = c.GetInfo(ctx, "a", "b")
	assert.ErrorIs(t, err, ErrProtocol)
	assert.ErrorContains(t, err, `GETINFO reply has "b" where "a" was expected`)
	_, err = c.GetInfo(ctx, "a", "b")
	assert.ErrorIs(t, err, ErrProtocol)
	assert.ErrorContains(t, err, `no value for "b"`)
	_, err = c.GetInfo(ctx, "a")
	assert.ErrorIs(t, err, ErrProtocol)
	assert.ErrorContains(t, err, "where no more keys was expected")

	v, err = c.GetInfo(ctx, "a", "b")
	require.NoError(t, err)
	assert.Equal(t, []string{"line 1\nline 2", "2"}, v)

	_, err = c.GetInfo(ctx)
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
