// Package tor is the one-import entry point of gotorcon: start a tor (or
// attach to one), publish onion services as net.Listeners, dial through Tor,
// and reach the control connection and the configuration, all from one
// handle.
//
//	t, err := tor.Start(ctx, nil) // a private tor, bootstrapped
//	if err != nil { ... }
//	defer t.Close()
//	ln, err := t.Listen(ctx, 80)   // an onion service, published
//	...
//	go http.Serve(ln, handler)
//	resp, err := t.HTTPClient().Get("http://" + ln.Addr().String())
//
// # State
//
// Tor keeps its entry guards and a copy of the directory in its data
// directory. Like tsnet, Start keeps it between runs, in a directory of the
// program's own (os.UserConfigDir()/gotorcon-<program name>), so that a
// restart bootstraps from the cached directory and keeps its guards
// (tor's guard design assumes they persist). The directory is locked while
// a tor runs on it: a second concurrent run of the same program gets an
// error matching process.ErrDataDirInUse (set Options.DataDir or
// Options.Ephemeral for it). Options.Ephemeral uses a throw-away directory
// instead, removed by Close; so does every Start that names no DataDir
// under `go test` (testing.Testing), on a private test network (Network
// set: its state would be of no use to the next network), or on a machine
// without a user configuration directory.
//
// The packages below do the work and can be used on their own:
// control (the control protocol), process and launch (running tor),
// config (tor's configuration), onion (onion services and dialing),
// torstate (live circuits, streams and relays), metrics (tor's
// MetricsPort), balance (Onionbalance) and tortest (a private Tor network
// on loopback for tests and demos).
package tor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/process"
)

// Mode says where Start gets its tor from.
type Mode int

const (
	// Private starts a new tor owned by this program (the default).
	Private Mode = iota
	// Global shares one tor per Go program, reference counted.
	Global
	// System attaches to a tor that is already running; Close never stops it.
	System
)

// Options configure Start. A nil *Options is the zero value: a private tor
// that joins the public Tor network, keeps its state in the program's own
// directory, and is waited for until bootstrapped, at most
// launch.DefaultStallTimeout without progress.
type Options struct {
	// Mode chooses a private, global or system tor.
	Mode Mode
	// Torrc holds extra tor options for a private or global tor.
	Torrc *config.Torrc
	// Network holds the client options of a private test network (see
	// tortest.Network.ClientTorrc); nil means the public Tor network.
	Network *config.Torrc
	// DataDir is tor's data directory, kept after Close. When empty it is
	// the program's own directory (see the package documentation), or a
	// temporary one with Network set or under go test.
	DataDir string
	// Ephemeral gives tor a throw-away data directory, removed by Close:
	// nothing is kept between runs (new guards every time).
	Ephemeral bool
	// NoNetwork returns as soon as tor answers, with its network disabled
	// (private and global tors; a system tor is not waited for).
	// EnableNetwork enables it later.
	NoNetwork bool

	// Path is the tor binary (default: $GOTORCON_TOR, PATH, the usual
	// install locations; see process.Find).
	Path string
	// Creator runs tor another way than exec of a binary, for example a
	// tor linked into the program (see process.Creator).
	Creator process.Creator
	// Output, when set, receives a copy of tor's own output.
	Output io.Writer

	// BootstrapTimeout, when not zero, bounds each bootstrap wait.
	BootstrapTimeout time.Duration
	// StallTimeout ends a bootstrap in which tor reached no new step for
	// this long (launch.DefaultStallTimeout when zero; negative: never).
	// A failed bootstrap is a *launch.BootstrapError with tor's warnings.
	StallTimeout time.Duration
	// Progress, when set, receives each bootstrap step.
	Progress func(*control.Bootstrap)
	// Warning, when set, receives each of tor's warnings and errors (its
	// [warn] and [err] log lines; a system tor's bootstrap problems) and
	// gotorcon's own, as one line of text. It is called from another
	// goroutine than Progress, and must not block.
	Warning func(msg string)
	// Logger, when set, receives tor's log lines and gotorcon's messages.
	Logger *slog.Logger

	// System configures the attachment when Mode is System. Its bootstrap
	// fields default to the ones above.
	System launch.SystemOptions
}

// Tor is a running, controlled tor. Its methods are safe for concurrent
// use; none holds a lock while it waits for tor, so Close always returns
// promptly.
//
// When a tor that Start launched dies (it crashed or was killed), the
// methods' calls in flight return within milliseconds and later calls at
// once, with an error matching process.ErrExited that says how tor exited
// and what it logged last (errors.As gives the *process.ExitError); so do
// the requests of HTTPClient. What was handed out before reports its own
// errors: a net.Conn from Dial, a response body being read, a Dialer's
// calls. Close is still needed, to remove tor's temporary files.
type Tor struct {
	t         *launch.Tor
	transport *http.Transport // shared by every HTTPClient

	mu     sync.Mutex
	dialer *onion.Dialer
	cfg    *config.TorConfig
	closed bool
}

// Start gets a tor as opts say and, unless opts.NoNetwork, waits until it
// has bootstrapped (a system tor's network is never changed, only waited
// for). The context bounds the whole start; on failure nothing is left
// running. A global tor is shared with the program's other Global starts:
// the first one's Logger, Warning and Output are the ones that receive
// its output.
func Start(ctx context.Context, opts *Options) (*Tor, error) {
	if opts == nil {
		opts = &Options{}
	}
	logger := opts.Logger
	if opts.Warning != nil {
		var next slog.Handler = slog.DiscardHandler
		if logger != nil {
			next = logger.Handler()
		}
		logger = slog.New(&warnHandler{next: next, warn: opts.Warning})
	}
	var (
		lt  *launch.Tor
		err error
	)
	switch opts.Mode {
	case Private, Global:
		dataDir, err := pickDataDir(opts, testing.Testing())
		if err != nil {
			return nil, err
		}
		lo := launch.Options{
			Path:             opts.Path,
			Torrc:            opts.Torrc,
			Network:          opts.Network,
			DataDir:          dataDir,
			Output:           opts.Output,
			Logger:           logger,
			Creator:          opts.Creator,
			NoNetwork:        opts.NoNetwork,
			BootstrapTimeout: opts.BootstrapTimeout,
			StallTimeout:     opts.StallTimeout,
			Progress:         opts.Progress,
		}
		if opts.Mode == Private {
			lt, err = launch.Private(ctx, lo)
		} else {
			lt, err = launch.Global(ctx, lo)
		}
		if errors.Is(err, process.ErrDataDirInUse) && opts.DataDir == "" {
			err = fmt.Errorf("tor: another run of this program is using its state directory (set Options.DataDir or Options.Ephemeral for a second one): %w", err)
		}
		if err != nil {
			return nil, err
		}
	case System:
		so := opts.System
		if so.Progress == nil {
			so.Progress = opts.Progress
		}
		if so.Warning == nil && opts.Warning != nil {
			so.Warning = func(b *control.Bootstrap) { opts.Warning(bootstrapProblem(b)) }
		}
		if so.Logger == nil {
			so.Logger = logger
		}
		if so.BootstrapTimeout == 0 {
			so.BootstrapTimeout = opts.BootstrapTimeout
		}
		if so.StallTimeout == 0 {
			so.StallTimeout = opts.StallTimeout
		}
		if lt, err = launch.System(ctx, so); err != nil {
			return nil, err
		}
		if !opts.NoNetwork {
			if err := lt.WaitBootstrap(ctx); err != nil {
				lt.Close()
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("tor: unknown Mode %d", opts.Mode)
	}
	t := &Tor{t: lt}
	t.transport = (&onion.Dialer{}).HTTPClient().Transport.(*http.Transport).Clone()
	t.transport.DialContext = t.Dial
	return t, nil
}

// pickDataDir returns the data directory of a private or global tor: the
// one given, "" (temporary) when Ephemeral, under go test or without a user
// configuration directory, else the program's own.
func pickDataDir(opts *Options, underTest bool) (string, error) {
	if opts.DataDir != "" {
		if opts.Ephemeral {
			return "", errors.New("tor: Options.DataDir and Options.Ephemeral are exclusive")
		}
		return opts.DataDir, nil
	}
	if opts.Ephemeral || opts.Network != nil || underTest {
		return "", nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", nil
	}
	return filepath.Join(base, "gotorcon-"+programName()), nil
}

// programName is the base name of the running binary, without ".exe".
func programName() string {
	exe, err := os.Executable()
	if err != nil || exe == "" {
		exe = os.Args[0]
	}
	name := strings.TrimSuffix(filepath.Base(exe), ".exe")
	if name == "" || name == "." || name == string(filepath.Separator) {
		return "program"
	}
	return name
}

// bootstrapProblem formats a BOOTSTRAP problem for Options.Warning.
func bootstrapProblem(b *control.Bootstrap) string {
	s := fmt.Sprintf("bootstrap problem at %d%%: %s (%s)", b.Progress, b.Warning, b.Reason)
	if b.HostAddr != "" {
		s += " with " + b.HostAddr
	}
	return s
}

// warnHandler passes records of level Warn and above to a callback, and
// everything to the next handler.
type warnHandler struct {
	next slog.Handler
	warn func(string)
}

func (h *warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *warnHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warn(r.Message)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnHandler{next: h.next.WithAttrs(as), warn: h.warn}
}

func (h *warnHandler) WithGroup(name string) slog.Handler {
	return &warnHandler{next: h.next.WithGroup(name), warn: h.warn}
}

// Control returns the authenticated control connection.
func (t *Tor) Control() *control.Conn { return t.t.Control() }

// Launched returns the underlying launch.Tor (process, control address,
// cookie file, ...).
func (t *Tor) Launched() *launch.Tor { return t.t }

// EnableNetwork enables the network of a tor started with NoNetwork and
// waits until it has bootstrapped.
func (t *Tor) EnableNetwork(ctx context.Context) error {
	if err := t.checkOpen(); err != nil {
		return err
	}
	return t.gone(t.t.EnableNetwork(ctx))
}

// Listen publishes an onion service whose virtual ports (default 80) lead
// to the returned net.Listener, and returns once it is published (both
// descriptors uploaded). Its Addr is "<id>.onion:<port>". Close removes the
// service. For keys, client authorization and other options use
// ListenConfig.
func (t *Tor) Listen(ctx context.Context, ports ...int) (*onion.Listener, error) {
	return t.ListenConfig(ctx, &onion.ListenConfig{Ports: ports})
}

// ListenConfig publishes an onion service configured by lc (see
// onion.ListenConfig) on this tor's control connection.
func (t *Tor) ListenConfig(ctx context.Context, lc *onion.ListenConfig) (*onion.Listener, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	if lc == nil {
		lc = &onion.ListenConfig{}
	}
	l, err := lc.Listen(ctx, t.t.Control())
	return l, t.gone(err)
}

// ListenDir publishes an on-disk onion service (see onion.DirConfig): its
// key is kept in dc.Dir, so it has the same address every time, across
// restarts of tor and of the program.
func (t *Tor) ListenDir(ctx context.Context, dc *onion.DirConfig) (*onion.Listener, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	if dc == nil {
		return nil, errors.New("tor: ListenDir needs a DirConfig with a Dir")
	}
	l, err := dc.Listen(ctx, t.t.Control())
	return l, t.gone(err)
}

// AddClientAuth gives tor the key with which it reaches an onion service
// that requires client authorization (see onion.ClientAuth; the service
// lists the key's public half in its ListenConfig.ClientAuth).
func (t *Tor) AddClientAuth(ctx context.Context, a onion.ClientAuth) (onion.ClientAuthResult, error) {
	if err := t.checkOpen(); err != nil {
		return 0, err
	}
	r, err := onion.AddClientAuth(ctx, t.t.Control(), a)
	return r, t.gone(err)
}

// errTorClosed is the error of a method called after Close.
var errTorClosed = fmt.Errorf("tor: %w", net.ErrClosed)

// checkOpen returns errTorClosed after Close, and tor's exit once a tor
// we launched has died.
func (t *Tor) checkOpen() error {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return errTorClosed
	}
	return t.exited()
}

// exitWait bounds how long a call whose connection to tor broke waits for
// tor's exit to be reported. Tor is reaped within milliseconds of its
// death; the bound only matters for a tor that keeps running.
const exitWait = time.Second

// exited returns tor's exit (an *process.ExitError) when the tor we
// launched has exited other than through Close, else nil.
func (t *Tor) exited() error {
	p := t.t.Process()
	if p == nil {
		return nil
	}
	select {
	case <-p.Done():
		return p.Err()
	default:
		return nil
	}
}

// gone returns err, tied to tor's exit when the call failed because the
// tor we launched died: the caller then learns that (errors.Is
// process.ErrExited) rather than "EOF" or "connection refused". When err
// says that a connection to tor broke, gone waits for tor's exit (at most
// exitWait); if the control connection still stands it first asks tor,
// so that a live tor costs one round trip, not the wait.
func (t *Tor) gone(err error) error {
	if err == nil || errors.Is(err, process.ErrExited) {
		return err
	}
	p := t.t.Process()
	if p == nil {
		return err // a system tor: its exit is not ours to report
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return err
	}
	if exit := t.exited(); exit != nil {
		return withExit(err, exit)
	}
	if !broken(err) {
		return err
	}
	select {
	case <-t.t.Done(): // the owning connection ended: tor exits, or has
	default:
		ctx, cancel := context.WithTimeout(context.Background(), exitWait)
		_, perr := t.t.Control().GetInfoValue(ctx, "version")
		cancel()
		if perr == nil {
			return err // tor runs: the failure was the stream's own
		}
	}
	timer := time.NewTimer(exitWait)
	defer timer.Stop()
	select {
	case <-p.Done():
		if exit := p.Err(); exit != nil {
			return withExit(err, exit)
		}
	case <-timer.C:
	}
	return err
}

// withExit joins a call's error and tor's exit, which explains it.
func withExit(err, exit error) error { return fmt.Errorf("%w; %w", err, exit) }

// broken reports whether err says that a connection to tor (control or
// SOCKS) ended or was refused, rather than that tor answered.
func broken(err error) bool {
	for _, target := range []error{net.ErrClosed, io.EOF, io.ErrUnexpectedEOF, onion.ErrSOCKSProtocol,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Dialer returns a dialer through tor's SOCKS port (an error matching
// launch.ErrNoSocks while tor's network is disabled). Streams of one Dialer
// may share circuits; call Isolated on it for a dialer whose streams use
// circuits of their own.
func (t *Tor) Dialer(ctx context.Context) (*onion.Dialer, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	d := t.dialer
	t.mu.Unlock()
	if d == nil {
		addr, err := t.t.SocksAddr(ctx)
		if err != nil {
			return nil, t.gone(err)
		}
		d = onion.NewDialer(addr)
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, errTorClosed
		}
		if t.dialer == nil {
			t.dialer = d
		}
		d = t.dialer
		t.mu.Unlock()
	}
	c := *d
	return &c, nil
}

// Dial connects to address (host:port, .onion or not) through Tor. Names
// are resolved by tor, never locally.
func (t *Tor) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	d, err := t.Dialer(ctx)
	if err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, t.gone(err)
	}
	return c, nil
}

// Resolve asks tor to resolve a host name through its network (SOCKS
// RESOLVE, answered by an exit); nothing is looked up locally.
func (t *Tor) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	d, err := t.Dialer(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := d.Resolve(ctx, host)
	return a, t.gone(err)
}

// HTTPClient returns an HTTP client whose every connection goes through
// Tor. It ignores HTTP_PROXY and HTTPS_PROXY and never resolves names
// locally. It may be made at any time: each connection finds tor's SOCKS
// port when it is made, so a client made before EnableNetwork works after
// it. Every client shares one connection pool, closed by Close.
func (t *Tor) HTTPClient() *http.Client {
	return &http.Client{Transport: roundTripper{t}}
}

// roundTripper is the Transport of HTTPClient: the shared transport, whose
// errors say when tor died.
type roundTripper struct{ t *Tor }

func (r roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.t.transport.RoundTrip(req)
	if err != nil {
		return nil, r.t.gone(err)
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the shared pool
// (http.Client.CloseIdleConnections calls it).
func (r roundTripper) CloseIdleConnections() { r.t.transport.CloseIdleConnections() }

// Config returns tor's configuration, loaded on first use and kept in sync
// with tor until Close. Once tor has died it returns tor's exit.
func (t *Tor) Config(ctx context.Context) (*config.TorConfig, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	cfg := t.cfg
	t.mu.Unlock()
	if cfg != nil {
		return cfg, nil
	}
	cfg, err := config.Load(ctx, t.t.Control(), nil)
	if err != nil {
		if err := t.checkOpen(); err != nil {
			return nil, err
		}
		return nil, t.gone(err)
	}
	t.mu.Lock()
	var drop *config.TorConfig
	switch {
	case t.closed:
		drop, cfg = cfg, nil
	case t.cfg != nil: // another caller won
		drop, cfg = cfg, t.cfg
	default:
		t.cfg = cfg
	}
	t.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
	if cfg == nil {
		return nil, errTorClosed
	}
	return cfg, nil
}

// Close stops what Start started: the configuration sync, the HTTP
// clients' connections and, for a private tor (or the last user of the
// global one), the tor process and its temporary files. It never stops a
// system tor. Calls waiting for tor return with an error. Close is
// idempotent.
func (t *Tor) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	cfg := t.cfg
	t.mu.Unlock()
	var errs []error
	if cfg != nil {
		errs = append(errs, cfg.Close())
	}
	errs = append(errs, t.t.Close())
	t.transport.CloseIdleConnections()
	return errors.Join(errs...)
}
