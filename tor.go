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
// The packages below do the work and can be used on their own:
// control (the control protocol), process and launch (running tor),
// config (tor's configuration), onion (onion services and dialing) and
// tortest (a private Tor network on loopback for tests and demos).
package tor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
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
// that joins the public Tor network and is waited for until bootstrapped.
type Options struct {
	// Mode chooses a private, global or system tor.
	Mode Mode
	// Torrc holds extra tor options for a private or global tor.
	Torrc *config.Torrc
	// Network holds the client options of a private test network (see
	// tortest.Network.ClientTorrc); nil means the public Tor network.
	Network *config.Torrc
	// DataDir is tor's data directory, kept after Close; a temporary one
	// (removed by Close) when empty.
	DataDir string
	// NoNetwork returns as soon as tor answers, with its network disabled
	// (private and global tors). EnableNetwork enables it later.
	NoNetwork bool
	// System configures the attachment when Mode is System.
	System launch.SystemOptions
	// Progress, when set, receives each bootstrap step.
	Progress func(*control.Bootstrap)
	// Logger, when set, receives tor's log lines and gotorcon's messages.
	Logger *slog.Logger
}

// Tor is a running, controlled tor. Its methods are safe for concurrent use.
type Tor struct {
	t *launch.Tor

	mu     sync.Mutex
	dialer *onion.Dialer
	cfg    *config.TorConfig
	closed bool
}

// Start gets a tor as opts say and, unless opts.NoNetwork, waits until it
// has bootstrapped. The context bounds the whole start; on failure nothing
// is left running.
func Start(ctx context.Context, opts *Options) (*Tor, error) {
	if opts == nil {
		opts = &Options{}
	}
	var (
		lt  *launch.Tor
		err error
	)
	switch opts.Mode {
	case Private, Global:
		lo := launch.Options{
			Torrc:     opts.Torrc,
			Network:   opts.Network,
			DataDir:   opts.DataDir,
			NoNetwork: opts.NoNetwork,
			Progress:  opts.Progress,
			Logger:    opts.Logger,
		}
		if opts.Mode == Private {
			lt, err = launch.Private(ctx, lo)
		} else {
			lt, err = launch.Global(ctx, lo)
		}
	case System:
		so := opts.System
		if so.Progress == nil {
			so.Progress = opts.Progress
		}
		if so.Logger == nil {
			so.Logger = opts.Logger
		}
		lt, err = launch.System(ctx, so)
	default:
		return nil, fmt.Errorf("tor: unknown Mode %d", opts.Mode)
	}
	if err != nil {
		return nil, err
	}
	return &Tor{t: lt}, nil
}

// Control returns the authenticated control connection.
func (t *Tor) Control() *control.Conn { return t.t.Control() }

// Launched returns the underlying launch.Tor (process, control address,
// cookie file, ...).
func (t *Tor) Launched() *launch.Tor { return t.t }

// EnableNetwork enables the network of a tor started with NoNetwork and
// waits until it has bootstrapped.
func (t *Tor) EnableNetwork(ctx context.Context) error { return t.t.EnableNetwork(ctx) }

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
	return lc.Listen(ctx, t.t.Control())
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
	return dc.Listen(ctx, t.t.Control())
}

// errTorClosed is the error of a method called after Close.
var errTorClosed = fmt.Errorf("tor: %w", net.ErrClosed)

// checkOpen returns errTorClosed after Close.
func (t *Tor) checkOpen() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errTorClosed
	}
	return nil
}

// Dialer returns a dialer through tor's SOCKS port. Streams of one Dialer
// may share circuits; call Isolated on it for a dialer whose streams use
// circuits of their own.
func (t *Tor) Dialer(ctx context.Context) (*onion.Dialer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errTorClosed
	}
	if t.dialer == nil {
		addr, err := t.t.SocksAddr(ctx)
		if err != nil {
			return nil, err
		}
		t.dialer = onion.NewDialer(addr)
	}
	d := *t.dialer
	return &d, nil
}

// Dial connects to address (host:port, .onion or not) through Tor. Names
// are resolved by tor, never locally.
func (t *Tor) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	d, err := t.Dialer(ctx)
	if err != nil {
		return nil, err
	}
	return d.DialContext(ctx, network, address)
}

// HTTPClient returns an HTTP client whose every connection goes through
// Tor. It ignores HTTP_PROXY and HTTPS_PROXY and never resolves names
// locally. If tor's SOCKS address cannot be read, requests fail with that
// error.
func (t *Tor) HTTPClient() *http.Client {
	d, err := t.Dialer(context.Background())
	if err != nil {
		return &http.Client{Transport: errTransport{err}}
	}
	return d.HTTPClient()
}

type errTransport struct{ err error }

func (e errTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, e.err }

// Config returns tor's configuration, loaded on first use and kept in sync
// with tor until Close.
func (t *Tor) Config(ctx context.Context) (*config.TorConfig, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errTorClosed
	}
	if t.cfg == nil {
		cfg, err := config.Load(ctx, t.t.Control(), nil)
		if err != nil {
			return nil, err
		}
		t.cfg = cfg
	}
	return t.cfg, nil
}

// Done is closed when the connection to tor ends (tor exited, or Close).
func (t *Tor) Done() <-chan struct{} { return t.t.Done() }

// Close stops what Start started: the configuration sync and, for a
// private tor (or the last user of the global one), the tor process and its
// files. It never stops a system tor. Close is idempotent.
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
	return errors.Join(errs...)
}
