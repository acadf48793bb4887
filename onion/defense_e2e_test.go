package onion

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/metrics"
	"github.com/gotorcon/tor/tortest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEndUnderAttack runs the DoS defenses on a private network: a
// service tor with a MetricsPort, a client tor, and (for the flood) a
// second client tor.
func TestEndToEndUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end tests need a private Tor network (skipped with -short)")
	}
	n := tortest.NewNetwork(t)
	budget := 8 * time.Minute
	if os.Getenv("GOTORCON_FLOOD_EFFORT") != "" {
		budget = 16 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	mrc, err := metrics.Torrc("")
	require.NoError(t, err)
	opts := []launch.Options{{Network: n.ClientTorrc(), Torrc: mrc}, {Network: n.ClientTorrc()}}
	tors := make([]*launch.Tor, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tors[i], errs[i] = launch.Private(ctx, opts[i])
		}()
	}
	wg.Wait()
	for i, tr := range tors {
		if tr != nil {
			t.Cleanup(func() { tr.Close() })
		}
		require.NoError(t, errs[i])
	}
	svcTor, cliTor := tors[0], tors[1]
	svc := svcTor.Control()
	sa, err := cliTor.SocksAddr(ctx)
	require.NoError(t, err)
	dialer := NewDialer(sa)
	maddr, err := metrics.Addr(ctx, svc)
	require.NoError(t, err)

	t.Run("PoWEphemeral", func(t *testing.T) {
		l, err := (&ListenConfig{PoW: PoW{Mode: PoWOn}}).Listen(ctx, svc)
		require.NoError(t, err)
		assert.True(t, l.PoW())
		serveEcho(t, l)
		c, attempts := dialRetry(ctx, t, dialer, l.Addr().String())
		defer c.Close()
		t.Logf("PoW-enabled ephemeral service reached in %d attempt(s)", attempts)
		echoRoundTrip(t, c)

		// An ephemeral service learns its clients' circuits, not which
		// connection came on which: closing them all cuts the client off.
		ids, err := l.RendezvousCircuits(ctx)
		require.NoError(t, err)
		require.Len(t, ids, 1, "one client circuit")
		require.NoError(t, l.CloseCircuit(ctx, ids[0]))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Read(make([]byte, 1))
		require.Error(t, err)
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "ended by tor, not by the deadline: %v", err)

		m, err := metrics.Fetch(ctx, maddr)
		require.NoError(t, err)
		o := m.Onion(l.ServiceID())
		require.True(t, o.Found, "the service's metrics")
		t.Logf("metrics: %+v", o)
		assert.GreaterOrEqual(t, o.IntroCircuits, 3.0)
		assert.GreaterOrEqual(t, o.Rendezvous, 1.0)
		assert.Equal(t, 0.0, o.PoWSuggestedEffort, "no attack, no effort asked")
	})

	t.Run("PoWDialAfterClose", func(t *testing.T) {
		// A client tor (0.4.8+) exempts streams to a service with PoW from
		// SocksTimeout (connection_ap_expire_beginning: the service may be
		// queueing the request). So a dial to a PoW service that has gone
		// away is bounded only by the dialer's context, while the same dial
		// to a service without PoW fails after SocksTimeout with 0x06
		// (TestEndToEnd/DialAfterClose). Probed: still pending after 100 s
		// with SocksTimeout 10 s.
		const socksTimeout = 5 * time.Second
		setSocksTimeout(t, cliTor.Control(), socksTimeout)
		l, err := listenPorts(ctx, svc)
		require.NoError(t, err)
		require.True(t, l.PoW())
		serveEcho(t, l)
		c, _ := dialRetry(ctx, t, dialer, l.Addr().String())
		c.Close()
		require.NoError(t, l.Close())
		wait := 4 * socksTimeout
		dctx, dcancel := context.WithTimeout(ctx, wait)
		defer dcancel()
		start := time.Now()
		_, err = dialer.Isolated().DialContext(dctx, "tcp", l.Addr().String())
		require.Error(t, err)
		t.Logf("dial after Close of a PoW service: %v after %v", err, time.Since(start).Round(time.Millisecond))
		assert.ErrorIs(t, err, context.DeadlineExceeded, "tor kept the stream past SocksTimeout; the context ended it")
		assert.GreaterOrEqual(t, time.Since(start), wait)
	})

	t.Run("DirServiceCircuitID", func(t *testing.T) {
		circs, err := svc.Subscribe(ctx, "CIRC")
		require.NoError(t, err)
		defer circs.Close()
		l, err := (&DirConfig{Dir: filepath.Join(t.TempDir(), "hs"), ExportCircuitID: true, Ports: []int{80, 81}}).Listen(ctx, svc)
		require.NoError(t, err)
		defer l.Close()
		assert.True(t, l.PoW(), "on by default")
		accepted := make(chan net.Conn, 4)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}
		}()
		// serve echoes one accepted connection and returns its circuit.
		serve := func() (*CircuitConn, ProxyHeader) {
			var c net.Conn
			select {
			case c = <-accepted:
			case <-ctx.Done():
				t.Fatal("no connection accepted")
			}
			cc, ok := c.(*CircuitConn)
			require.True(t, ok, "a *CircuitConn")
			cc.SetReadDeadline(time.Now().Add(time.Minute))
			h, err := cc.Header()
			require.NoError(t, err)
			cc.SetReadDeadline(time.Time{})
			go func() { io.Copy(cc, cc) }()
			return cc, h
		}

		c1, attempts := dialRetry(ctx, t, dialer, l.Hostname()+":81")
		defer c1.Close()
		t.Logf("on-disk service reached in %d attempt(s)", attempts)
		s1, h1 := serve()
		defer s1.Close()
		echoRoundTrip(t, c1) // the header is not in the stream
		assert.Equal(t, 81, h1.VirtPort)

		// The service tor's rendezvous circuit for this client has the ID
		// the header gave.
		rend := map[string]bool{}
		deadline := time.After(30 * time.Second)
		for !rend[h1.CircuitID] {
			select {
			case raw := <-circs.Events():
				p, _ := raw.Parsed()
				if ev, ok := p.(*control.CircEvent); ok && ev.Purpose == "HS_SERVICE_REND" && ev.RendQuery == l.ServiceID() && ev.Status == "BUILT" {
					rend[ev.ID] = true
				}
			case <-deadline:
				t.Fatalf("no CIRC BUILT event of purpose HS_SERVICE_REND for %s with ID %s (saw %v)", l.ServiceID(), h1.CircuitID, rend)
			}
		}

		// A second connection of the same client shares the circuit; a
		// client on another circuit has another ID.
		c2, _ := dialRetry(ctx, t, dialer, l.Hostname()+":80")
		defer c2.Close()
		s2, h2 := serve()
		defer s2.Close()
		assert.Equal(t, h1.CircuitID, h2.CircuitID)
		assert.Equal(t, 80, h2.VirtPort)
		c3, _ := dialRetry(ctx, t, dialer.Isolated(), l.Hostname()+":80")
		defer c3.Close()
		s3, h3 := serve()
		defer s3.Close()
		assert.NotEqual(t, h1.CircuitID, h3.CircuitID)
		t.Logf("circuits: client 1 %s (ports %d and %d), client 2 %s", h1.CircuitID, h1.VirtPort, h2.VirtPort, h3.CircuitID)

		// Cutting the first client off ends both its connections, and no
		// other.
		require.NoError(t, l.CloseClient(ctx, s1))
		for i, c := range []net.Conn{c1, c2} {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := c.Read(make([]byte, 1))
			require.Error(t, err, "client connection %d", i+1)
			var ne net.Error
			assert.False(t, errors.As(err, &ne) && ne.Timeout(), "connection %d ended by tor, not by the deadline: %v", i+1, err)
		}
		echoRoundTrip(t, c3)
		closed := false
		for !closed {
			select {
			case raw := <-circs.Events():
				p, _ := raw.Parsed()
				ev, ok := p.(*control.CircEvent)
				closed = ok && ev.ID == h1.CircuitID && ev.Status == "CLOSED"
			case <-time.After(30 * time.Second):
				t.Fatalf("no CIRC CLOSED for circuit %s", h1.CircuitID)
			}
		}
		assert.Error(t, l.CloseCircuit(ctx, h1.CircuitID), "already closed")
	})

	t.Run("Flood", func(t *testing.T) {
		flood(ctx, t, n, svc, maddr, false)
	})
	t.Run("FloodRaisesEffort", func(t *testing.T) {
		if os.Getenv("GOTORCON_FLOOD_EFFORT") == "" {
			t.Skip("floods for 5 to 11 minutes (tor updates the suggested effort every 300 s); set GOTORCON_FLOOD_EFFORT=1 to run")
		}
		flood(ctx, t, n, svc, maddr, true)
	})
}

// flood floods two services of the service tor with introductions from a
// second client tor, one with PoW (with a small queue so that the flood
// fills it) and one without, and checks what the service tor's metrics
// show. Tor updates the suggested effort only every 300 s
// (HS_UPDATE_PERIOD), longer than a test should run; so unless
// wantEffort is set the test checks the PoW queue, which only a service
// with PoW has, and stops as soon as it fills (about 2 s).
//
// With wantEffort, measured on 2 cores: the queue held 30-56 requests
// and the effort went from 0 to 1 at the first update, 300 s after the
// service started. Tor's update raises the effort only if requests are
// queued at that moment (AIMD: the top of the queue is "worthwhile"); an
// earlier run that flooded both services let the queue drain by then
// (the flooder's circuits slowed down) and the effort stayed 0.
func flood(ctx context.Context, t *testing.T, n *tortest.Network, svc *control.Conn, maddr string, wantEffort bool) {
	flooder, err := launch.Private(ctx, launch.Options{Network: n.ClientTorrc()})
	require.NoError(t, err)
	defer flooder.Close()
	fa, err := flooder.SocksAddr(ctx)
	require.NoError(t, err)
	fd := NewDialer(fa)

	pow, err := (&ListenConfig{PoW: PoW{Mode: PoWOn, QueueRate: 1, QueueBurst: 1}}).Listen(ctx, svc)
	require.NoError(t, err)
	serveEcho(t, pow)
	plain, err := (&ListenConfig{PoW: PoW{Mode: PoWOff}}).Listen(ctx, svc)
	require.NoError(t, err)
	serveEcho(t, plain)
	for _, l := range []*Listener{pow, plain} {
		c, _ := dialRetry(ctx, t, fd, l.Addr().String())
		c.Close()
	}

	budget := 2 * time.Minute
	if wantEffort {
		budget = 11 * time.Minute
	}
	fctx, stop := context.WithTimeout(ctx, budget)
	defer stop()
	var dials, fails atomic.Int64
	var wg sync.WaitGroup
	workers := 12 // per service; each dial is a new circuit, so a new introduction
	targets := []*Listener{pow, plain}
	if wantEffort {
		// All the flooder's circuits for the PoW service: its queue must
		// still be full when tor recomputes the effort (300 s after the
		// service started, then every 300 s), or the effort stays 0.
		workers, targets = 24, []*Listener{pow}
	}
	for _, l := range targets {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for fctx.Err() == nil {
					dctx, cancel := context.WithTimeout(fctx, 20*time.Second)
					c, err := fd.Isolated().DialContext(dctx, "tcp", l.Addr().String())
					cancel()
					dials.Add(1)
					if err != nil {
						fails.Add(1)
						continue
					}
					c.Close()
				}
			}()
		}
	}
	start := time.Now()
	var powM, plainM metrics.Onion
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	done := func() bool {
		if wantEffort {
			return powM.PoWSuggestedEffort > 0
		}
		return powM.PoWQueued > 0 || powM.PoWSuggestedEffort > 0
	}
	last := time.Now()
	for !done() && fctx.Err() == nil {
		if time.Since(last) > 30*time.Second {
			t.Logf("%v of flood: %d dials, %d failed; PoW service: effort %v, queued %v, %v introductions",
				time.Since(start).Round(time.Second), dials.Load(), fails.Load(), powM.PoWSuggestedEffort, powM.PoWQueued, powM.Introductions)
			last = time.Now()
		}
		select {
		case <-tick.C:
		case <-fctx.Done():
		}
		m, err := metrics.Fetch(ctx, maddr)
		require.NoError(t, err)
		powM, plainM = m.Onion(pow.ServiceID()), m.Onion(plain.ServiceID())
		if plainM.PoWQueued > 0 {
			t.Errorf("a service without PoW queued requests: %+v", plainM)
		}
	}
	stop()
	wg.Wait()
	t.Logf("after %v of flood (%d dials, %d failed): PoW service %+v; plain service %+v",
		time.Since(start).Round(time.Second), dials.Load(), fails.Load(), powM, plainM)
	assert.True(t, done(), "the flood fills the PoW queue (or raises the effort) of the service with PoW")
	assert.Equal(t, 0.0, plainM.PoWQueued, "a service without PoW has no queue")
	assert.Greater(t, powM.Introductions, 1.0)
	if !wantEffort {
		assert.Greater(t, plainM.Introductions, 1.0)
	}
}
