//go:build unix

package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
)

// fakeUnix is fake over a unix socketpair: a socket of package net, so that
// callers write their own commands and read their own replies (readOwn),
// which they never do over net.Pipe.
func fakeUnix(t *testing.T, h func(s *controltest.Conn), opts ...Option) *Conn {
	t.Helper()
	checkNoLeak(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("socketpair-%d", i))
		nc, err := net.FileConn(f)
		f.Close()
		require.NoError(t, err)
		conns[i] = nc
	}
	sc := controltest.NewConn(conns[1])
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		h(sc)
	}()
	c := NewConn(conns[0], opts...)
	require.NotNil(t, c.raw, "a unix socket takes non-blocking writes")
	// The reader goroutine does not take an idle role back during a test
	// that checks who holds it (TestIdleRoleNoticesTorClosing sets it back).
	c.setIdleReclaim(time.Hour)
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

func (c *Conn) setIdleReclaim(d time.Duration) {
	c.mu.Lock()
	c.idleReclaim = d
	c.mu.Unlock()
}

// settleIdle issues commands, one at a time, until one that was alone in
// flight for its whole round trip has left the read role idle.
func settleIdle(t *testing.T, c *Conn) {
	t.Helper()
	for i := 0; i < 10; i++ {
		require.NoError(t, c.requestOK(context.Background(), "SIGNAL NEWNYM"))
		if r, _ := c.readState(); r == rdIdle {
			return
		}
	}
	t.Fatal("the read role never went idle")
}

func (c *Conn) readState() (reading int, lends uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reading, c.lends
}

// waitReading waits until the read role is in state st (the limit only
// turns a hang into a failure).
func waitReading(t *testing.T, c *Conn, st int) {
	t.Helper()
	limit := time.Now().Add(time.Minute)
	for time.Now().Before(limit) {
		if r, _ := c.readState(); r == st {
			return
		}
		select {
		case <-c.Done():
			t.Fatalf("connection ended (%v) before the read role became %d", c.Err(), st)
		default:
		}
		runtime.Gosched()
	}
	r, _ := c.readState()
	t.Fatalf("the read role is still %d, not %d", r, st)
}

func TestSequentialCallerReadsOwnReply(t *testing.T) {
	c := fakeUnix(t, echoHandler)
	ctx := context.Background()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const n = 200
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key-%d", i)
		var (
			v   string
			err error
		)
		switch i % 3 {
		case 0:
			v, err = c.GetInfoValue(ctx, k)
		case 1:
			v, err = c.GetInfoValue(tctx, k) // a ctx that can end: read deadline armed
		default:
			var rep *Reply
			rep, err = c.Request(tctx, "GETINFO "+k)
			if err == nil {
				v = strings.TrimPrefix(rep.Lines[0].Text, k+"=")
			}
		}
		require.NoError(t, err)
		require.Equal(t, k, v)
	}
	// The first call finds the reader goroutine reading; it leaves the
	// role idle after that reply, and every later call reads its own.
	st, lends := c.readState()
	assert.Equal(t, rdIdle, st)
	assert.Equal(t, uint64(n-1), lends)
}

// TestOwnReadDispatchesEventsAndHandsBack: a caller reading its own reply
// dispatches an event that comes first to a subscription made meanwhile,
// then hands the role back to the reader goroutine (a SETEVENTS is in
// flight behind it, and a subscription is live).
func TestOwnReadDispatchesEventsAndHandsBack(t *testing.T) {
	gotSetEvents := make(chan string, 4)
	c := fakeUnix(t, func(s *controltest.Conn) {
		var held bool
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch {
			case cmd.Line == "GETINFO slow":
				held = true // answered after the next SETEVENTS
			case cmd.Keyword == "SETEVENTS":
				gotSetEvents <- cmd.Args
				if held {
					held = false
					s.Reply("650 BW 7 9", "250-slow=1", "250 OK", "250 OK")
					continue
				}
				s.Reply("250 OK")
			case cmd.Line == "GETINFO events/names":
				s.Reply("250-events/names=BW CIRC", "250 OK")
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	// Fetch tor's event names now, so that the Subscribe below sends only
	// SETEVENTS.
	sub, err := c.Subscribe(ctx, "CIRC")
	require.NoError(t, err)
	require.Equal(t, "CIRC", <-gotSetEvents)
	require.NoError(t, sub.Close())
	settleIdle(t, c)

	type res struct {
		v   string
		err error
	}
	slow := make(chan res, 1)
	go func() {
		v, err := c.GetInfoValue(ctx, "slow")
		slow <- res{v, err}
	}()
	waitReading(t, c, rdCaller)
	bw, err := c.Subscribe(ctx, "BW") // its SETEVENTS is read by the reader goroutine
	require.NoError(t, err)
	defer bw.Close()
	r := <-slow
	require.NoError(t, r.err)
	assert.Equal(t, "1", r.v)
	ev := <-bw.Events()
	assert.Equal(t, "BW", ev.Type)
	st, _ := c.readState()
	assert.Equal(t, rdLoop, st, "with a subscription live the reader goroutine keeps the role")
}

// TestOwnReadCancelled: a caller blocked reading its own reply returns when
// its ctx ends; the late reply is dropped and the stream stays in sync.
func TestOwnReadCancelled(t *testing.T) {
	release := make(chan struct{})
	c := fakeUnix(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			if cmd.Line == "GETINFO hang" {
				<-release
			}
			k, _, _ := strings.Cut(cmd.Args, " ")
			s.Reply("250-"+k+"="+k+"-value", "250 OK")
		}
	})
	ctx := context.Background()
	_, err := c.GetInfoValue(ctx, "warm")
	require.NoError(t, err)
	waitReading(t, c, rdIdle)

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetInfoValue(cctx, "hang")
		errc <- err
	}()
	waitReading(t, c, rdCaller)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	st, _ := c.readState()
	assert.Equal(t, rdLoop, st, "the abandoned reply is the reader goroutine's to drop")
	close(release)
	for i := 0; i < 5; i++ { // the dropped reply is not taken for these
		k := fmt.Sprintf("after-%d", i)
		v, err := c.GetInfoValue(ctx, k)
		require.NoError(t, err)
		require.Equal(t, k+"-value", v)
	}
	_, lends := c.readState()
	assert.NotZero(t, lends, "calls after the dropped reply read their own again")
}

// TestOwnReadPartialAndBigReplies: replies written in pieces, and one
// bigger than the read buffer (handed to the reader goroutine), read by
// callers that read their own.
func TestOwnReadPartialAndBigReplies(t *testing.T) {
	big := strings.Repeat("0123456789abcdef\n", 10000) // 170 kB
	c := fakeUnix(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Line {
			case "GETINFO split more":
				for _, p := range []string{"250-split=a\r\n250+more=\r\nx", "\r\n", ".\r\n250", " OK\r\n"} {
					s.Write([]byte(p))
				}
			case "GETINFO big":
				s.Reply(append(append([]string{"250+big="}, controltest.DataBlock(big)...), "250 OK")...)
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		m, err := c.GetInfo(ctx, "split", "more")
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "x"}, m)
		v, err := c.GetInfoValue(ctx, "big")
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSuffix(big, "\n"), v)
	}
	_, lends := c.readState()
	assert.NotZero(t, lends)
}

// TestBufferReply: the caller that reads its own reply waits for all of
// it before parsing, and gives up on one bigger than the read buffer.
func TestBufferReply(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	c := &Conn{rd: newReplyReader(pr, 0)}
	type res struct {
		complete bool
		err      error
	}
	run := func() chan res {
		ch := make(chan res, 1)
		go func() {
			complete, err := c.bufferReply()
			ch <- res{complete, err}
		}()
		return ch
	}
	// io.Pipe's Write returns when the reader has read everything: the
	// first part is in the buffer before the second is written.
	parts := []string{"650 BW 1 2\r\n", "250-a=b\r\n250+c=\r\n", "250 x\r\n", ".\r\n250 OK\r\n"}
	ch := run()
	pw.Write([]byte(parts[0]))
	r := <-ch
	require.NoError(t, r.err)
	assert.True(t, r.complete, "an event is a reply")
	c.rd.br.Discard(len(parts[0]))
	ch = run()
	total := 0
	for _, p := range parts[1:] {
		pw.Write([]byte(p))
		total += len(p)
	}
	r = <-ch
	require.NoError(t, r.err)
	assert.True(t, r.complete)
	assert.Equal(t, total, c.rd.br.Buffered(), "returned only when the end line was buffered")
	c.rd.br.Discard(total)

	ch = run()
	go pw.Write([]byte("250+big=\r\n" + strings.Repeat("x", 40<<10)))
	r = <-ch
	require.NoError(t, r.err)
	assert.False(t, r.complete, "bigger than the buffer")
	assert.Equal(t, c.rd.br.Size(), c.rd.br.Buffered())

	pw.CloseWithError(io.ErrClosedPipe)
	c.rd.br.Discard(c.rd.br.Buffered())
	_, err := c.bufferReply()
	assert.Error(t, err)
}

// TestIdleRoleNoticesTorClosing: with the read role idle, tor closing the
// connection still ends it (the reader goroutine takes the role back).
func TestIdleRoleNoticesTorClosing(t *testing.T) {
	closeNow := make(chan struct{})
	c := fakeUnix(t, func(s *controltest.Conn) {
		if _, err := s.ReadCommand(); err != nil {
			return
		}
		s.Reply("250 OK")
		<-closeNow
	})
	c.setIdleReclaim(idleReclaim)
	require.NoError(t, c.requestOK(context.Background(), "SIGNAL NEWNYM"))
	waitReading(t, c, rdIdle)
	close(closeNow)
	<-c.Done()
	assert.Equal(t, io.EOF, c.Err())
}

// TestOwnReadConnectionEnds: tor closing the connection, or Close, while a
// caller reads its own reply fails the call like any pending one.
func TestOwnReadConnectionEnds(t *testing.T) {
	for _, how := range []string{"tor closes", "Close", "tor closes mid-reply"} {
		t.Run(how, func(t *testing.T) {
			hung := make(chan struct{})
			c := fakeUnix(t, func(s *controltest.Conn) {
				for {
					cmd, err := s.ReadCommand()
					if err != nil {
						return
					}
					if cmd.Line != "GETINFO hang" {
						s.Reply("250 OK")
						continue
					}
					switch how {
					case "tor closes":
						return
					case "tor closes mid-reply":
						s.Write([]byte("250-hang=1\r\n"))
						return
					}
					close(hung)
					s.ReadCommand() // until the client closes
					return
				}
			})
			require.NoError(t, c.requestOK(context.Background(), "SIGNAL NEWNYM"))
			waitReading(t, c, rdIdle)
			errc := make(chan error, 1)
			go func() {
				_, err := c.GetInfoValue(context.Background(), "hang")
				errc <- err
			}()
			if how == "Close" {
				<-hung
				waitReading(t, c, rdCaller)
				c.Close()
			}
			err := <-errc
			require.ErrorIs(t, err, net.ErrClosed)
			var ce *ClosedError
			require.True(t, errors.As(err, &ce))
			switch how {
			case "tor closes":
				assert.Equal(t, io.EOF, c.Err())
			case "tor closes mid-reply":
				assert.Equal(t, io.ErrUnexpectedEOF, c.Err())
			default:
				assert.ErrorIs(t, c.Err(), net.ErrClosed)
			}
		})
	}
}

// TestOwnReadConcurrentCallers: callers that read their own replies and
// callers whose replies the reader goroutine delivers, at once.
func TestOwnReadConcurrentCallers(t *testing.T) {
	c := fakeUnix(t, echoHandler)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := 0; i < 300; i++ {
				k := fmt.Sprintf("key-%d-%d", g, i)
				var v string
				var err error
				switch {
				case g == 0 && i%2 == 0:
					var call *Call
					if call, err = c.Start("GETINFO " + k); err == nil {
						var rep *Reply
						if rep, err = call.Wait(ctx); err == nil {
							v = strings.TrimPrefix(rep.Lines[0].Text, k+"=")
						}
					}
				case g%2 == 0:
					v, err = c.GetInfoValue(cctx, k)
				default:
					v, err = c.GetInfoValue(ctx, k)
				}
				if err == nil && v != k {
					err = fmt.Errorf("got %q for %s", v, k)
				}
				if err != nil {
					errs <- err
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

func TestReplyComplete(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"250 OK", false},
		{"250 OK\r\n", true},
		{"250 OK\n", true},
		{"250-a=b\r\n", false},
		{"250-a=b\r\n250 OK\r\n", true},
		{"650 BW 1 2\r\n250-a=b\r\n", true}, // an event is a reply
		{"250+a=\r\n250 OK\r\n", false},     // data, not the end line
		{"250+a=\r\n250 OK\r\n.\r\n", false},
		{"250+a=\r\n250 OK\r\n.\r\n250 OK\r\n", true},
		{"250+a=\r\n..\r\n.x\r\n.\r\n250 OK\r\n", true},
		{"250+a=\r\n.\r", false},
		{"25\r\n", true},       // refused at once
		{"250x\r\n", true},     // refused at once
		{"250-a\r\n1\n", true}, // refused at once
	} {
		assert.Equal(t, tc.want, replyComplete([]byte(tc.in)), "%q", tc.in)
	}
}

// TestRoleStaysWithReaderUnderConcurrency: the role goes idle only after
// a command that was alone in flight for its whole round trip; two
// commands that overlap leave it with the reader goroutine.
func TestRoleStaysWithReaderUnderConcurrency(t *testing.T) {
	c := fakeUnix(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Line {
			case "GETINFO a":
				if _, err := s.ReadCommand(); err != nil { // GETINFO b
					return
				}
				s.Reply("250-a=1", "250 OK", "250-b=2", "250 OK")
			default:
				s.Reply("250 OK")
			}
		}
	})
	ctx := context.Background()
	a := make(chan error, 1)
	go func() {
		_, err := c.GetInfoValue(ctx, "a")
		a <- err
	}()
	// b goes out while a is in flight (tor answers a only after b).
	for {
		c.mu.Lock()
		inFlight := len(c.pending) + len(c.queue)
		c.mu.Unlock()
		if inFlight > 0 {
			break
		}
		runtime.Gosched()
	}
	v, err := c.GetInfoValue(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "2", v)
	require.NoError(t, <-a)
	st, lends := c.readState()
	assert.Equal(t, rdLoop, st)
	assert.Zero(t, lends)
	settleIdle(t, c) // and one alone does leave it idle
}
