package torstate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/torstate"
	"github.com/gotorcon/tor/tortest"
)

// One private network (1 authority, 4 relays, the last one an exit that
// accepts 127.0.0.1) for the whole test binary.
func TestMain(m *testing.M) { tortest.Main(m, tortest.Options{}) }

type env struct {
	net   *tortest.Network
	tor   *launch.Tor
	c     *control.Conn
	st    *torstate.State
	socks string
	// guard, middle and exit are fingerprints for a three-hop path.
	guard, middle, exit string
}

func newEnv(t *testing.T, opts *torstate.Options) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a private Tor network (skipped with -short)")
	}
	n := tortest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Tor learns its circuit build timeout from the first builds, which
	// take milliseconds on loopback; under the race detector on a busy
	// machine later builds then time out. A fixed minute keeps the tests
	// about the State, not about tor's timeout estimate.
	torrc := new(config.Torrc).Add("LearnCircuitBuildTimeout", "0").Add("CircuitBuildTimeout", "60")
	tr, err := launch.Private(ctx, launch.Options{Network: n.ClientTorrc(), Torrc: torrc})
	require.NoError(t, err)
	pid := tr.Process().Pid()
	dataDir := tr.Process().DataDir()
	e := &env{net: n, tor: tr, c: tr.Control()}
	t.Cleanup(func() {
		require.NoError(t, tr.Close())
		// No tor and no temporary directory outlives Close.
		leakcheck.WaitPidGone(t, pid, 10*time.Second)
		_, err := os.Stat(dataDir)
		assert.True(t, errors.Is(err, os.ErrNotExist), "tor's data directory %s still exists: %v", dataDir, err)
	})
	e.socks, err = tr.SocksAddr(ctx)
	require.NoError(t, err)
	e.st, err = torstate.New(ctx, e.c, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, e.st.Close())
		leakcheck.Check(t, 5*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor/torstate."))
	})
	for _, nd := range n.Nodes() {
		switch {
		case nd.Exit:
			e.exit = nd.Fingerprint
		case nd.Role == tortest.Relay && e.guard == "":
			e.guard = nd.Fingerprint
		case nd.Role == tortest.Relay && e.middle == "":
			e.middle = nd.Fingerprint
		}
	}
	require.NotEmpty(t, e.exit, "the network has no exit")
	return e
}

// build builds a circuit guard → middle → exit, retrying a bounded number
// of times when tor reports a failure (relays of a fresh network may not
// be reachable yet).
func (e *env) build(t *testing.T, ctx context.Context, path []string) torstate.Circuit {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := e.st.BuildCircuit(ctx, path)
		if err == nil {
			return c
		}
		var ce *torstate.CircuitError
		if attempt < 4 && errors.As(err, &ce) {
			t.Logf("building %v, attempt %d: %v; retrying", path, attempt, err)
			continue
		}
		require.NoError(t, err)
	}
}

// helloServer is an HTTP server on 127.0.0.1 that answers "hello".
func helloServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(ctx context.Context, d *onion.Dialer, url string) (string, error) {
	tr := d.HTTPClient().Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestBuildCircuitThroughChosenRelays(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := []string{e.guard, e.middle, e.exit}
	c := e.build(t, ctx, path)
	assert.Equal(t, "BUILT", c.Status)
	assert.Equal(t, path, c.Fingerprints())
	// The path's relays come from the consensus.
	for _, r := range c.Path {
		assert.Equal(t, "127.0.0.1", r.Address)
		assert.NotZero(t, r.ORPort)
		assert.True(t, r.HasFlag("Running"))
		assert.Equal(t, "", r.Country, "tortest tors have no GeoIP data; 127.0.0.1 has no country anyway")
	}
	live, ok := e.st.Circuit(c.ID)
	require.True(t, ok)
	assert.Equal(t, path, live.Fingerprints())
	// Tor agrees.
	circs, err := e.c.CircuitStatus(ctx)
	require.NoError(t, err)
	i := slices.IndexFunc(circs, func(x *control.CircEvent) bool { return x.ID == c.ID })
	require.GreaterOrEqual(t, i, 0)
	var fps []string
	for _, r := range circs[i].Path {
		fps = append(fps, r.Fingerprint)
	}
	assert.Equal(t, path, fps)
	t.Logf("circuit %s", c.String())

	// An unknown relay: tor refuses at once.
	_, err = e.st.BuildCircuit(ctx, []string{e.guard, "0000000000000000000000000000000000000000"})
	require.Error(t, err)
	var ce *control.Error
	assert.True(t, errors.As(err, &ce), "%v", err)

	// A cancelled build closes its circuit.
	cctx, ccancel := context.WithCancel(ctx)
	sub := e.st.Subscribe(0)
	defer sub.Close()
	ccancel()
	_, err = e.st.BuildCircuit(cctx, path)
	assert.ErrorIs(t, err, context.Canceled)

	// Relays come from the consensus.
	relays := e.st.Relays()
	assert.Len(t, relays, len(e.net.Nodes()))
	r, ok := e.st.Relay("$" + e.exit)
	require.True(t, ok)
	assert.Equal(t, e.exit, r.Fingerprint)
}

// circuitOfStream waits for the STREAM SUCCEEDED event of a stream to
// target and returns its circuit ID.
func circuitOfStream(t *testing.T, ctx context.Context, sub *control.Subscription, target string) string {
	t.Helper()
	for {
		select {
		case ev, ok := <-sub.Events():
			require.True(t, ok, "event stream ended")
			p, err := ev.Parsed()
			require.NoError(t, err)
			se, ok := p.(*control.StreamEvent)
			require.True(t, ok, "%T", p)
			if se.Target == target && se.Status == "SUCCEEDED" {
				return se.CircuitID
			}
		case <-ctx.Done():
			t.Fatalf("no STREAM SUCCEEDED for %s: %v", target, ctx.Err())
		}
	}
}

func TestAttacherChoosesCircuit(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := helloServer(t)
	target := strings.TrimPrefix(srv.URL, "http://")
	c := e.build(t, ctx, []string{e.guard, e.middle, e.exit})

	var mu sync.Mutex
	var seen []torstate.Stream
	require.NoError(t, e.st.SetAttacher(ctx, func(ctx context.Context, st torstate.Stream) (string, error) {
		mu.Lock()
		seen = append(seen, st)
		mu.Unlock()
		return c.ID, nil
	}))
	v, err := e.c.GetConf(ctx, "__LeaveStreamsUnattached")
	require.NoError(t, err)
	assert.Equal(t, "1", v[0].Value)

	evs, err := e.c.Subscribe(ctx, "STREAM")
	require.NoError(t, err)
	defer evs.Close()
	body, err := get(ctx, onion.NewDialer(e.socks), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "hello", body)
	assert.Equal(t, c.ID, circuitOfStream(t, ctx, evs, target), "the stream must travel on the attacher's circuit")
	mu.Lock()
	require.NotEmpty(t, seen)
	assert.Equal(t, target, seen[0].Target)
	assert.Equal(t, "NEW", seen[0].Status)
	assert.NotEmpty(t, seen[0].SourceAddr)
	mu.Unlock()

	// Removing the attacher restores tor's setting.
	require.NoError(t, e.st.SetAttacher(ctx, nil))
	v, err = e.c.GetConf(ctx, "__LeaveStreamsUnattached")
	require.NoError(t, err)
	assert.Equal(t, "0", v[0].Value)

	// ... to what it was, even when that was 1.
	require.NoError(t, e.c.SetConf(ctx, control.ConfEntry{Key: "__LeaveStreamsUnattached", Value: "1"}))
	require.NoError(t, e.st.SetAttacher(ctx, func(context.Context, torstate.Stream) (string, error) { return "", nil }))
	require.NoError(t, e.st.SetAttacher(ctx, nil))
	v, err = e.c.GetConf(ctx, "__LeaveStreamsUnattached")
	require.NoError(t, err)
	assert.Equal(t, "1", v[0].Value)
	require.NoError(t, e.c.SetConf(ctx, control.ConfEntry{Key: "__LeaveStreamsUnattached", Value: "0"}))

	// Close restores it too.
	require.NoError(t, e.st.SetAttacher(ctx, func(context.Context, torstate.Stream) (string, error) { return c.ID, nil }))
	require.NoError(t, e.st.Close())
	v, err = e.c.GetConf(ctx, "__LeaveStreamsUnattached")
	require.NoError(t, err)
	assert.Equal(t, "0", v[0].Value)
	assert.ErrorIs(t, e.st.SetAttacher(ctx, nil), torstate.ErrClosed)
}

func TestAttacherFailuresDoNotHang(t *testing.T) {
	e := newEnv(t, &torstate.Options{AttachTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := helloServer(t)
	cases := map[string]torstate.Attacher{
		"error": func(ctx context.Context, st torstate.Stream) (string, error) {
			return "", errors.New("no circuit for you")
		},
		"panic": func(ctx context.Context, st torstate.Stream) (string, error) {
			panic("attacher bug")
		},
		"sleeps past the bound": func(ctx context.Context, st torstate.Stream) (string, error) {
			select {
			case <-time.After(time.Minute):
			case <-ctx.Done():
			}
			return "1", nil
		},
		"unknown circuit": func(ctx context.Context, st torstate.Stream) (string, error) {
			return "999999", nil
		},
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, e.st.SetAttacher(ctx, cases[name]))
			// The request fails, long before its own 60 s deadline.
			rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
			defer rcancel()
			t0 := time.Now()
			_, err := get(rctx, onion.NewDialer(e.socks), srv.URL)
			require.Error(t, err)
			assert.NoError(t, rctx.Err(), "the request hung until its deadline")
			var se *onion.SOCKSError
			assert.True(t, errors.As(err, &se), "want a SOCKS failure, got %v", err)
			t.Logf("request failed after %v: %v", time.Since(t0).Round(time.Millisecond), err)
		})
	}
	// No stream is left waiting.
	require.NoError(t, e.st.SetAttacher(ctx, nil))
	ss, err := e.c.StreamStatus(ctx)
	require.NoError(t, err)
	assert.Empty(t, ss)
}

func TestCloseCircuitClosesStreams(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A TCP server that holds connections open.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	c := e.build(t, ctx, []string{e.guard, e.middle, e.exit})
	d, err := e.st.Dialer(ctx, c.ID)
	require.NoError(t, err)
	sub := e.st.Subscribe(0)
	defer sub.Close()
	var conns []net.Conn
	for range 3 {
		conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		conns = append(conns, conn)
	}
	// The State learns of the streams from tor's events, which may follow
	// the SOCKS replies by a moment.
	var ids []string
	for len(ids) < 3 {
		ids = ids[:0]
		for _, s := range e.st.Streams() {
			if s.CircuitID == c.ID && s.Status == "SUCCEEDED" {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) < 3 {
			select {
			case <-sub.Changes():
			case <-ctx.Done():
				t.Fatalf("streams on circuit %s: %v (want 3): %v", c.ID, ids, ctx.Err())
			}
		}
	}

	require.NoError(t, e.st.CloseCircuit(ctx, c.ID))
	closed := map[string]bool{}
	circClosed := false
	for len(closed) < 3 || !circClosed {
		select {
		case ch := <-sub.Changes():
			if ch.Stream != nil && slices.Contains(ids, ch.Stream.ID) && ch.Stream.Status == "CLOSED" {
				closed[ch.Stream.ID] = true
			}
			if ch.Circuit != nil && ch.Circuit.ID == c.ID && ch.Circuit.Status == "CLOSED" {
				circClosed = true
				assert.Equal(t, "REQUESTED", ch.Circuit.Reason)
			}
		case <-ctx.Done():
			t.Fatalf("streams closed: %v, circuit closed: %v: %v", closed, circClosed, ctx.Err())
		}
	}
	for _, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		assert.Error(t, err, "the client side of a closed stream ends")
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "read timed out: the stream was not closed")
	}
	_, ok := e.st.Circuit(c.ID)
	assert.False(t, ok)
	// The Dialer of a closed circuit fails instead of going elsewhere.
	_, err = d.DialContext(ctx, "tcp", ln.Addr().String())
	assert.Error(t, err)
}

// TestSyncAfterTraffic runs 200 circuits and 500 streams through the
// State, then compares it with a fresh GETINFO snapshot.
func TestSyncAfterTraffic(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := helloServer(t)
	relays := []string{e.guard, e.middle}
	for _, nd := range e.net.Nodes() {
		if !nd.Exit && !slices.Contains(relays, nd.Fingerprint) {
			relays = append(relays, nd.Fingerprint)
		}
	}
	const nCirc, nStreams, par = 200, 500, 8
	circs := make([]torstate.Circuit, nCirc)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	errs := make(chan error, nCirc+nStreams)
	t0 := time.Now()
	for i := range nCirc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a, b := relays[i%len(relays)], relays[(i+1)%len(relays)]
			for attempt := 1; ; attempt++ {
				c, err := e.st.BuildCircuit(ctx, []string{a, b, e.exit})
				if err != nil && attempt < 3 && errors.Is(err, torstate.ErrCircuitFailed) {
					t.Logf("circuit %d, attempt %d: %v; retrying", i, attempt, err)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("circuit %d: %w", i, err)
					return
				}
				circs[i] = c
				return
			}
		}()
	}
	wg.Wait()
	t.Logf("%d circuits built in %v", nCirc, time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	dialers := make([]*onion.Dialer, nCirc)
	for i, c := range circs {
		d, err := e.st.Dialer(ctx, c.ID)
		require.NoError(t, err)
		dialers[i] = d
	}
	t0 = time.Now()
	for i := range nStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if body, err := get(ctx, dialers[i%nCirc], srv.URL); err != nil || body != "hello" {
				errs <- fmt.Errorf("stream %d: %q, %v", i, body, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d streams in %v", nStreams, time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	// Close half of the circuits, so the snapshot has changes of every kind.
	for _, c := range circs[:nCirc/2] {
		require.NoError(t, e.st.CloseCircuit(ctx, c.ID))
	}
	t.Logf("%d events applied", e.st.EventsApplied())

	// Tor is still busy (its own circuits, closing streams): compare until
	// a fresh snapshot and the state agree, a bounded number of times.
	var diff string
	for attempt := 1; attempt <= 50; attempt++ {
		diff = compare(t, ctx, e)
		if diff == "" {
			t.Logf("state matches tor's snapshot (attempt %d)", attempt)
			break
		}
		if attempt%10 == 0 {
			t.Logf("attempt %d: state differs from tor: %s", attempt, diff)
		}
		time.Sleep(100 * time.Millisecond) // let in-flight events arrive
	}
	require.Empty(t, diff, "state does not match tor's snapshot")

	// The relays are the consensus's.
	rs, err := e.c.NetworkStatus(ctx)
	require.NoError(t, err)
	var want, got []string
	for _, r := range rs {
		want = append(want, r.Fingerprint+" "+r.Nickname+" "+strings.Join(r.Flags, ","))
	}
	for _, r := range e.st.Relays() {
		got = append(got, r.Fingerprint+" "+r.Nickname+" "+strings.Join(r.Flags, ","))
	}
	sort.Strings(want)
	assert.Equal(t, want, got)
}

// Each Dialer's streams travel on its own circuit.
func TestDialerUsesItsCircuit(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := helloServer(t)
	target := strings.TrimPrefix(srv.URL, "http://")
	c1 := e.build(t, ctx, []string{e.guard, e.middle, e.exit})
	c2 := e.build(t, ctx, []string{e.middle, e.guard, e.exit})
	evs, err := e.c.Subscribe(ctx, "STREAM")
	require.NoError(t, err)
	defer evs.Close()
	for _, c := range []torstate.Circuit{c1, c2, c1} {
		d, err := e.st.Dialer(ctx, c.ID)
		require.NoError(t, err)
		body, err := get(ctx, d, srv.URL)
		require.NoError(t, err)
		assert.Equal(t, "hello", body)
		assert.Equal(t, c.ID, circuitOfStream(t, ctx, evs, target))
	}
	_, err = e.st.Dialer(ctx, "999999")
	assert.Error(t, err, "no Dialer for a circuit that does not exist")
}

// compare returns "" when the State's circuits and streams are what a
// fresh GETINFO circuit-status / stream-status says.
func compare(t *testing.T, ctx context.Context, e *env) string {
	m, err := e.c.GetInfo(ctx, "circuit-status", "stream-status")
	require.NoError(t, err)
	circs, err := control.ParseCircuitStatus(m[0])
	require.NoError(t, err)
	streams, err := control.ParseStreamStatus(m[1])
	require.NoError(t, err)
	var want, got []string
	for _, c := range circs {
		var fps []string
		for _, r := range c.Path {
			fps = append(fps, r.Fingerprint)
		}
		want = append(want, fmt.Sprintf("circ %s %s %s %s %s %v", c.ID, circStatus(c.Status), strings.Join(fps, ","), c.Purpose, c.HSState, c.BuildFlags))
	}
	for _, c := range e.st.Circuits() {
		got = append(got, fmt.Sprintf("circ %s %s %s %s %s %v", c.ID, circStatus(c.Status), strings.Join(c.Fingerprints(), ","), c.Purpose, c.HSState, c.BuildFlags))
	}
	for _, s := range streams {
		want = append(want, fmt.Sprintf("stream %s %s %s %s", s.ID, streamStatus(s.Status), s.CircuitID, s.Target))
	}
	for _, s := range e.st.Streams() {
		got = append(got, fmt.Sprintf("stream %s %s %s %s", s.ID, streamStatus(s.Status), s.CircuitID, s.Target))
	}
	sort.Strings(want)
	sort.Strings(got)
	if slices.Equal(want, got) {
		return ""
	}
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "\n  tor only:   %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "\n  state only: %s", g)
		}
	}
	return b.String()
}

// circStatus maps event statuses to what circuit-status says: tor reports
// a circuit that has a path under construction as EXTENDED.
func circStatus(s string) string {
	if s == "LAUNCHED" {
		return "EXTENDED"
	}
	return s
}

// streamStatus maps event statuses to what stream-status says: a stream
// waiting for a controller or a circuit is NEW there.
func streamStatus(s string) string {
	switch s {
	case "CONTROLLER_WAIT", "DETACHED":
		return "NEW"
	}
	return s
}

// Streams to onion services are tor's: tor 0.4.9 leaves them for the
// controller too (CONTROLLER_WAIT), but they never reach the attacher;
// the State hands them back to tor and they connect.
func TestOnionStreamsBypassTheAttacher(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	ln, err := (&onion.ListenConfig{Ports: []int{80}}).Listen(ctx, e.c)
	require.NoError(t, err)
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "onion") }))

	var mu sync.Mutex
	var seen []string
	require.NoError(t, e.st.SetAttacher(ctx, func(ctx context.Context, st torstate.Stream) (string, error) {
		mu.Lock()
		seen = append(seen, st.Target)
		mu.Unlock()
		return "", errors.New("the attacher must not see onion streams")
	}))
	url := "http://" + ln.Addr().String() + "/"
	for attempt := 1; ; attempt++ {
		body, err := get(ctx, onion.NewDialer(e.socks), url)
		if err == nil {
			assert.Equal(t, "onion", body)
			break
		}
		var se *onion.SOCKSError
		if attempt < 8 && errors.As(err, &se) && se.Temporary() && ctx.Err() == nil {
			t.Logf("GET %s, attempt %d: %v; retrying", url, attempt, err)
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond) // descriptor propagation; bounded
			continue
		}
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, seen)
}
