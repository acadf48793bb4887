package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
)

// Errors of Start and SetBackends, matched with errors.Is.
var (
	// ErrNoConsensus: the tor has no consensus yet, and onionbalance 0.2.2
	// exits at start without one. Start the Frontend once tor has
	// bootstrapped.
	ErrNoConsensus = errors.New("balance: tor has no consensus yet (onionbalance needs one at start: wait for tor's bootstrap)")
	// ErrUnsupportedNetwork: the tor is on a test network
	// (TestingTorNetwork 1) that onionbalance 0.2.2's testnet mode cannot
	// serve: a voting interval other than 20 s, or fewer than 5 HSDirs.
	ErrUnsupportedNetwork = errors.New("balance: onionbalance 0.2.2 cannot serve this test network")
	// ErrAuthUnsupported: onionbalance 0.2.2 authenticates with a cookie
	// (or none) and cannot be given a control password.
	ErrAuthUnsupported = errors.New("balance: onionbalance 0.2.2 cannot authenticate to this tor (it needs cookie authentication or none; it cannot be given a password)")
	// ErrTorClosed: the control connection to the frontend's tor ended,
	// so onionbalance was stopped.
	ErrTorClosed = errors.New("balance: the control connection to tor ended")
	// ErrClosed: the Frontend was closed.
	ErrClosed = errors.New("balance: frontend closed")
)

// Tor is the tor the frontend runs on: a *launch.Tor (tor.Tor.Launched()
// gives one). Onionbalance connects to its control port itself (a unix
// socket, or an IP address and port) and authenticates with tor's cookie.
type Tor interface {
	// Control returns a control connection to the tor: Frontend reads HS_DESC
	// events on it, and stops onionbalance when it ends.
	Control() *control.Conn
	// ControlAddr returns where onionbalance can connect: ("unix", path) or
	// ("tcp", "IP:port").
	ControlAddr() (network, address string)
}

// Testnet timing constants of onionbalance 0.2.2 (onionbalance/hs_v3/params.py).
const (
	// TestnetVotingInterval is the voting interval that onionbalance's
	// testnet mode assumes (it derives the time period, 8 minutes, from
	// it): a tortest network for a Frontend needs this VotingInterval.
	TestnetVotingInterval = 20 * time.Second
	// MinHSDirs is the least number of HSDirs with which onionbalance
	// 0.2.2 can compute where to upload (with fewer it loops forever).
	MinHSDirs = 5
)

// Frontend runs onionbalance for one master key. Set its fields, then call
// Start; the fields must not be changed afterwards (use SetBackends).
//
//	fe := &balance.Frontend{Key: master, Backends: []string{a, b}}
//	if err := fe.Start(ctx, frontendTor); err != nil { ... }
//	defer fe.Close()
//	err := fe.WaitPublished(ctx) // clients can now reach master's address
type Frontend struct {
	// Key is the master key: the frontend's onion address is its address.
	// Backends are instances of this address (see
	// onion.DirConfig.OnionbalanceMasters).
	Key *onion.Key
	// Backends are the onion addresses of the instances, with or without
	// ".onion" (at least one).
	Backends []string
	// Path is the onionbalance program; when empty, onionbalance on PATH
	// or in /usr/sbin (Debian's place), /usr/local/sbin, /usr/bin,
	// /usr/local/bin.
	Path string
	// Logger receives onionbalance's log lines at their levels (its
	// verbosity follows what Logger shows: debug, info or warning) and the
	// Frontend's own messages. Nil discards them.
	Logger *slog.Logger

	opMu sync.Mutex // serialises Start, SetBackends and Close

	mu       sync.Mutex
	started  bool
	closed   bool
	testnet  bool
	path     string
	baseArgs []string
	keyFile  []byte
	conn     *control.Conn
	sub      *control.Subscription
	run      *run
	gen      *generation
	done     chan struct{}
	err      error
	wg       sync.WaitGroup
}

// generation tracks the publication of the master descriptor by one run of
// onionbalance.
type generation struct {
	published chan struct{}
	once      sync.Once
	started   time.Time
}

func newGeneration() *generation {
	return &generation{published: make(chan struct{}), started: time.Now()}
}

// Address returns the master onion address ("<id>.onion"), the one
// clients use.
func (f *Frontend) Address() string { return f.Key.Hostname() }

func (f *Frontend) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

// Start checks the configuration and the tor, then starts onionbalance
// against t and returns; it does not wait for the publication (see
// WaitPublished). t must have bootstrapped (ErrNoConsensus otherwise). When
// t is on a test network (TestingTorNetwork 1), onionbalance runs with its
// testnet switch, and the network must suit it (ErrUnsupportedNetwork).
// On error nothing is left running.
func (f *Frontend) Start(ctx context.Context, t Tor) error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	started := f.started
	f.started = true
	f.mu.Unlock()
	if started {
		return errors.New("balance: Frontend already started")
	}
	if f.Key == nil {
		return errors.New("balance: Frontend needs a Key")
	}
	backends, err := checkBackends(f.Key, f.Backends)
	if err != nil {
		return err
	}
	path, err := find(f.Path)
	if err != nil {
		return err
	}
	conn := t.Control()
	if conn == nil {
		return errors.New("balance: the tor has no control connection")
	}
	network, addr := t.ControlAddr()
	args, err := controlArgs(network, addr)
	if err != nil {
		return err
	}
	if err := checkAuth(ctx, conn); err != nil {
		return err
	}
	testnet, err := checkNetwork(ctx, conn)
	if err != nil {
		return err
	}
	if testnet {
		args = append(args, "--is-testnet")
	}
	args = append(args, "-v", verbosity(f.logger()))
	sub, err := conn.Subscribe(ctx, "HS_DESC")
	if err != nil {
		return fmt.Errorf("balance: subscribe to HS_DESC: %w", err)
	}

	f.mu.Lock()
	f.path, f.baseArgs, f.testnet = path, args, testnet
	f.keyFile = f.Key.MarshalSecretKeyFile()
	f.conn, f.sub = conn, sub
	f.done = make(chan struct{})
	f.gen = newGeneration()
	r, err := f.startLocked(backends)
	if err != nil {
		f.closed = true
		f.mu.Unlock()
		sub.Close()
		clear(f.keyFile)
		return err
	}
	f.run = r
	f.Backends = backends
	f.mu.Unlock()

	f.wg.Add(1)
	go f.watchEvents(sub)
	return nil
}

// startLocked starts onionbalance for backends and a goroutine that reports
// its exit. f.mu is held.
func (f *Frontend) startLocked(backends []string) (*run, error) {
	lg := f.logger()
	args := append([]string{"-c", "/dev/fd/4"}, f.baseArgs...)
	r, err := startRun(f.path, args, f.keyFile, configYAML(backends), lg)
	if err != nil {
		return nil, err
	}
	lg.Info("balance: onionbalance started", "pid", r.cmd.Process.Pid, "master", f.Key.Hostname(), "backends", len(backends), "testnet", f.testnet)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		<-r.exited
		r.wg.Wait()
		if r.expected() {
			return
		}
		f.fail(&ExitError{Err: r.err, Lines: r.lastLines()})
	}()
	return r, nil
}

// fail stops the frontend for good with err (the first cause wins).
func (f *Frontend) fail(err error) {
	f.mu.Lock()
	if f.closed || f.err != nil {
		f.mu.Unlock()
		return
	}
	f.err = err
	close(f.done)
	r := f.run
	f.mu.Unlock()
	f.logger().Error("balance: frontend stopped", "err", err)
	if r != nil {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			r.stop()
		}()
	}
}

// watchEvents follows HS_DESC events for the master address until the
// subscription ends; if it ended with the connection, onionbalance is
// stopped.
func (f *Frontend) watchEvents(sub *control.Subscription) {
	defer f.wg.Done()
	id := f.Key.ServiceID()
	lg := f.logger()
	for ev := range sub.Events() {
		p, _ := ev.Parsed()
		e, ok := p.(*control.HSDescEvent)
		if !ok || e.Address != id {
			continue
		}
		lg.Debug("balance: event", "HS_DESC", ev.Text())
		switch e.Action {
		case "UPLOADED":
			f.mu.Lock()
			g := f.gen
			f.mu.Unlock()
			g.once.Do(func() {
				lg.Info("balance: master descriptor published", "address", f.Key.Hostname(), "hsdir", e.HSDir, "after", time.Since(g.started).Round(time.Millisecond))
				close(g.published)
			})
		case "FAILED":
			lg.Warn("balance: master descriptor upload failed", "hsdir", e.HSDir, "reason", e.Reason)
		}
	}
	select {
	case <-f.conn.Done():
		f.fail(ErrTorClosed)
	default: // Close ended the subscription
	}
}

// WaitPublished waits until onionbalance has published the master
// descriptor since it was last started by Start or SetBackends: the first
// HS_DESC UPLOADED event of its tor for the master address. (Tor 0.4.9
// sends one per HSDir and descriptor, current and next time period, within
// a fraction of a second, and no UPLOAD event for onionbalance's HSPOST:
// a client that asks in that fraction of a second may still find nothing.) It returns early with the Frontend's error if it stopped
// (Err), ErrClosed after Close, or ctx's error.
func (f *Frontend) WaitPublished(ctx context.Context) error {
	f.mu.Lock()
	g, done := f.gen, f.done
	f.mu.Unlock()
	if g == nil {
		return errors.New("balance: Frontend not started")
	}
	select {
	case <-done:
		return f.Err()
	default:
	}
	select {
	case <-g.published:
		return nil
	case <-done:
		return f.Err()
	case <-ctx.Done():
		return fmt.Errorf("balance: waiting for the master descriptor: %w", ctx.Err())
	}
}

// SetBackends replaces the backends (f.Backends, which must not be read
// meanwhile) and restarts onionbalance with them
// (onionbalance 0.2.2 cannot be reconfigured safely while it runs; see the
// package documentation). The master descriptor already published stays
// valid meanwhile; WaitPublished then waits for the new one.
func (f *Frontend) SetBackends(ctx context.Context, backends []string) error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	if !f.started || f.done == nil {
		f.mu.Unlock()
		return errors.New("balance: Frontend not started")
	}
	if err := f.stoppedLocked(); err != nil {
		f.mu.Unlock()
		return err
	}
	old := f.run
	f.mu.Unlock()
	list, err := checkBackends(f.Key, backends)
	if err != nil {
		return err
	}
	old.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.stoppedLocked(); err != nil {
		return err
	}
	f.gen = newGeneration()
	r, err := f.startLocked(list)
	if err != nil {
		f.err = err
		close(f.done)
		return err
	}
	f.run = r
	f.Backends = list
	return nil
}

func (f *Frontend) stoppedLocked() error {
	switch {
	case f.closed:
		return ErrClosed
	case f.err != nil:
		return f.err
	}
	return nil
}

// Done is closed when the Frontend stops: Close, the end of the tor's
// control connection, or onionbalance exiting on its own (see Err). It
// returns nil before Start.
func (f *Frontend) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// Err returns why the Frontend stopped: an *ExitError when onionbalance
// exited on its own, ErrTorClosed, or ErrClosed after Close; nil while it
// runs.
func (f *Frontend) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil && f.closed {
		return ErrClosed
	}
	return f.err
}

// Close stops onionbalance (SIGTERM; SIGKILL after 5 s) and waits until it
// has exited, its output read and every goroutine of the Frontend ended.
// The master descriptor stays on the HSDirs until it expires, but nobody
// republishes it. Close is idempotent.
func (f *Frontend) Close() error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return nil
	}
	f.closed = true
	f.started = true
	if f.done != nil && f.err == nil {
		close(f.done)
	}
	r, sub := f.run, f.sub
	f.mu.Unlock()
	if r != nil {
		r.stop()
	}
	if sub != nil {
		sub.Close()
	}
	f.wg.Wait()
	clear(f.keyFile)
	return nil
}

// checkBackends validates the backend addresses and returns them as
// "<id>.onion".
func checkBackends(master *onion.Key, backends []string) ([]string, error) {
	if len(backends) == 0 {
		return nil, errors.New("balance: at least one backend is needed")
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(backends))
	for _, b := range backends {
		if _, err := onion.ParseAddress(b); err != nil {
			return nil, fmt.Errorf("balance: backend: %w", err)
		}
		id := onion.ServiceID(b)
		if id == master.ServiceID() {
			return nil, fmt.Errorf("balance: backend %s is the master address itself", b)
		}
		if seen[id] {
			return nil, fmt.Errorf("balance: backend %s given twice", b)
		}
		seen[id] = true
		out = append(out, id+".onion")
	}
	return out, nil
}

// configYAML renders onionbalance's configuration: one service, whose key
// is read from /dev/fd/3. Addresses are checked base32, so they need no
// quoting.
func configYAML(backends []string) []byte {
	var b strings.Builder
	b.WriteString("# written by github.com/gotorcon/tor/balance\nservices:\n- key: /dev/fd/3\n  instances:\n")
	for _, a := range backends {
		fmt.Fprintf(&b, "  - address: %s\n", a)
	}
	return []byte(b.String())
}

// controlArgs returns onionbalance's arguments for tor's control port.
// Onionbalance tries the unix socket of -s first (by default
// /var/run/tor/control, the system tor's), so -s is always given: empty
// for a TCP port.
func controlArgs(network, addr string) ([]string, error) {
	switch network {
	case "unix":
		if addr == "" {
			return nil, errors.New("balance: empty control socket path")
		}
		return []string{"-s", addr}, nil
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("balance: control address %q: %w", addr, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("balance: control address %q: onionbalance needs an IP address, not a name", addr)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, fmt.Errorf("balance: control address %q: bad port", addr)
		}
		return []string{"-s", "", "-i", ip.String(), "-p", port}, nil
	}
	return nil, fmt.Errorf("balance: control address %s %q: onionbalance connects to a unix socket or a TCP port", network, addr)
}

// checkAuth refuses a tor that onionbalance cannot authenticate to.
func checkAuth(ctx context.Context, conn *control.Conn) error {
	pi, err := conn.ProtocolInfo(ctx)
	if err != nil {
		return fmt.Errorf("balance: PROTOCOLINFO: %w", err)
	}
	for _, m := range []string{"NULL", "COOKIE", "SAFECOOKIE"} {
		if pi.HasMethod(m) {
			return nil
		}
	}
	return fmt.Errorf("%w (tor offers %s)", ErrAuthUnsupported, strings.Join(pi.AuthMethods, ","))
}

// checkNetwork reports whether the tor is on a test network, and refuses
// a tor with no consensus or a test network onionbalance cannot serve.
func checkNetwork(ctx context.Context, conn *control.Conn) (testnet bool, err error) {
	ce, err := conn.GetConf(ctx, "TestingTorNetwork")
	if err != nil {
		return false, fmt.Errorf("balance: GETCONF TestingTorNetwork: %w", err)
	}
	testnet = len(ce) == 1 && ce[0].Value == "1"
	info, err := conn.GetInfo(ctx, "consensus/valid-after", "consensus/fresh-until")
	if err != nil {
		return false, fmt.Errorf("balance: GETINFO consensus/*: %w", err)
	}
	va, err1 := time.Parse(time.DateTime, info[0])
	fu, err2 := time.Parse(time.DateTime, info[1])
	if err1 != nil || err2 != nil {
		return false, ErrNoConsensus
	}
	if !testnet {
		return false, nil
	}
	if vi := fu.Sub(va); vi != TestnetVotingInterval {
		return true, fmt.Errorf("%w: its voting interval is %v; onionbalance's testnet mode assumes %v (tortest.Options.VotingInterval)", ErrUnsupportedNetwork, vi, TestnetVotingInterval)
	}
	ns, err := conn.GetInfoValue(ctx, "ns/all")
	if err != nil {
		return true, fmt.Errorf("balance: GETINFO ns/all: %w", err)
	}
	if n := countHSDirs(ns); n < MinHSDirs {
		return true, fmt.Errorf("%w: it has %d HSDirs; onionbalance 0.2.2 needs at least %d (on a tortest network the authorities are the HSDirs: tortest.Options.Authorities)", ErrUnsupportedNetwork, n, MinHSDirs)
	}
	return true, nil
}

// countHSDirs counts the relays with the HSDir flag in a network status
// ("s" lines).
func countHSDirs(ns string) int {
	n := 0
	for _, l := range strings.Split(ns, "\n") {
		if !strings.HasPrefix(l, "s ") {
			continue
		}
		for _, f := range strings.Fields(l)[1:] {
			if f == "HSDir" {
				n++
				break
			}
		}
	}
	return n
}
