package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/process"
)

// ErrNoSocks is returned (wrapped) by [Tor.SocksAddr] when tor has no SOCKS
// listener (its network is disabled, or SocksPort is 0).
var ErrNoSocks = errors.New("launch: tor has no SOCKS listener")

// Options configure [Private] and [Global].
type Options struct {
	// Path is the tor binary (see process.Find: else $GOTORCON_TOR, PATH,
	// the usual locations).
	Path string
	// Torrc holds the caller's tor options. A DisableNetwork line is read
	// as NoNetwork ("1") or as a conflict with launch's own start offline
	// ("0": leave NoNetwork false instead).
	Torrc *config.Torrc
	// Network holds the client options of a private test network
	// (tortest), merged like Torrc.
	Network *config.Torrc
	// DataDir is tor's DataDirectory, kept after Close; a temporary one
	// (removed by Close) when empty.
	DataDir string
	// Output, when set, receives a copy of tor's stdout and stderr.
	Output io.Writer
	// Logger, when set, receives tor's log lines and launch's progress.
	Logger *slog.Logger
	// Creator runs tor another way than exec of Path (see
	// process.Creator).
	Creator process.Creator

	// NoNetwork leaves the network disabled: Private returns as soon as
	// tor answers on its control connection. Tor.EnableNetwork enables it
	// later.
	NoNetwork bool
	// StartTimeout bounds the start of the process (a minute when zero).
	StartTimeout time.Duration
	// BootstrapTimeout, when not zero, bounds each bootstrap wait, in
	// addition to the context's deadline.
	BootstrapTimeout time.Duration
	// StallTimeout ends a bootstrap wait in which tor reached no new step
	// for this long (2 minutes when zero; negative: never), so
	// that a start on a blocked or offline machine cannot hang.
	StallTimeout time.Duration
	// Progress, when set, is called with each new bootstrap step.
	Progress func(*control.Bootstrap)
	// Warning, when set, is called with each bootstrap problem that tor
	// recommends to report (RECOMMENDATION=warn). Tor's own [warn] log
	// lines go to Logger at slog.LevelWarn.
	Warning func(*control.Bootstrap)
}

// Tor is a running tor with an authenticated control connection. Its
// methods are safe for concurrent use.
type Tor struct {
	conn       *control.Conn
	proc       *process.Process // nil for System
	ctlNetwork string
	ctlAddr    string
	cookieFile string
	logger     *slog.Logger
	bootstrap  bootstrapConfig
	release    func() error // Global: drop the reference

	netMu *sync.Mutex // serializes EnableNetwork (shared by Global handles)

	closeOnce sync.Once
	closeErr  error
}

// Private starts a new tor and, unless opts.NoNetwork is set, waits until
// it has bootstrapped. On any failure the tor is killed and reaped and its
// temporary files removed; a bootstrap failure is a [*BootstrapError].
func Private(ctx context.Context, opts Options) (*Tor, error) {
	torrc, noNet, err := mergeTorrc(opts)
	if err != nil {
		return nil, err
	}
	t, err := startPrivate(ctx, opts, torrc)
	if err != nil {
		return nil, err
	}
	if !noNet && !opts.NoNetwork {
		if err := t.enable(ctx, t.bootstrap, true); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

func startPrivate(ctx context.Context, opts Options, torrc *config.Torrc) (*Tor, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := process.Start(ctx, process.Options{
		Path:         opts.Path,
		Torrc:        torrc,
		DataDir:      opts.DataDir,
		Output:       opts.Output,
		Logger:       opts.Logger,
		Creator:      opts.Creator,
		StartTimeout: opts.StartTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	network, addr := p.ControlAddr()
	return &Tor{
		conn:       p.Control(),
		proc:       p,
		ctlNetwork: network,
		ctlAddr:    addr,
		cookieFile: p.CookieFile(),
		logger:     logger,
		bootstrap:  newBootstrapConfig(opts.BootstrapTimeout, opts.StallTimeout, opts.Progress, opts.Warning),
		netMu:      new(sync.Mutex),
	}, nil
}

// launchTorrc holds launch's own settings: start offline, so that the
// bootstrap subscription is in place before tor does anything.
func launchTorrc() *config.Torrc { return new(config.Torrc).Add("DisableNetwork", "1") }

// mergeTorrc merges launch's settings, the caller's Torrc and the test
// network's options. noNet reports a caller's "DisableNetwork 1".
func mergeTorrc(opts Options) (torrc *config.Torrc, noNet bool, err error) {
	t := launchTorrc()
	for _, part := range []struct {
		name  string
		torrc *config.Torrc
	}{{"Options.Torrc", opts.Torrc}, {"Options.Network", opts.Network}} {
		if part.torrc == nil {
			continue
		}
		c := part.torrc.Clone()
		if vs := c.Values("DisableNetwork"); vs != nil {
			if len(vs) != 1 || strings.TrimSpace(vs[0]) != "1" {
				return nil, false, fmt.Errorf("launch: %w: %s sets DisableNetwork %q; launch starts tor offline and enables the network itself (set Options.NoNetwork to keep it off)",
					config.ErrConflict, part.name, vs)
			}
			noNet = true
			c.Delete("DisableNetwork")
		}
		if err := t.Merge(c); err != nil {
			return nil, false, fmt.Errorf("launch: merging %s: %w", part.name, err)
		}
	}
	if err := t.Validate(); err != nil {
		return nil, false, fmt.Errorf("launch: %w", err)
	}
	return t, noNet, nil
}

// Control returns the authenticated control connection. For a private or
// global tor it is the owning connection: closing it stops tor; use
// [Tor.Close] instead.
func (t *Tor) Control() *control.Conn { return t.conn }

// Process returns the tor process, or nil for a system tor.
func (t *Tor) Process() *process.Process { return t.proc }

// ControlAddr returns where further control connections can be made:
// ("unix", path) or ("tcp", "host:port").
func (t *Tor) ControlAddr() (network, address string) { return t.ctlNetwork, t.ctlAddr }

// CookieFile returns the path of tor's authentication cookie ("" when tor
// has none or did not say).
func (t *Tor) CookieFile() string { return t.cookieFile }

// Done is closed when the control connection has ended (tor exited, or
// Close).
func (t *Tor) Done() <-chan struct{} { return t.conn.Done() }

// SocksAddr returns the address of tor's first SOCKS listener, from GETINFO
// net/listeners/socks ("127.0.0.1:PORT", or "unix:/path" for a unix
// SocksPort). It returns an error matching [ErrNoSocks] when there is none.
func (t *Tor) SocksAddr(ctx context.Context) (string, error) {
	v, err := t.conn.GetInfoValue(ctx, "net/listeners/socks")
	if err != nil {
		return "", fmt.Errorf("launch: GETINFO net/listeners/socks: %w", err)
	}
	addrs, err := control.SplitQuoted(v)
	if err != nil {
		return "", fmt.Errorf("launch: GETINFO net/listeners/socks %q: %w", v, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("%w (is its network disabled?)", ErrNoSocks)
	}
	return addrs[0], nil
}

// EnableNetwork sets DisableNetwork 0 and waits until tor has bootstrapped
// (see the package documentation). On failure a private tor keeps running:
// the caller decides whether to Close it.
func (t *Tor) EnableNetwork(ctx context.Context) error {
	return t.enable(ctx, t.bootstrap, true)
}

// WaitBootstrap waits until tor has bootstrapped, without touching its
// configuration (for a system tor, or one whose network was enabled by
// someone else).
func (t *Tor) WaitBootstrap(ctx context.Context) error {
	return t.enable(ctx, t.bootstrap, false)
}

func (t *Tor) enable(ctx context.Context, bc bootstrapConfig, setNetwork bool) error {
	t.netMu.Lock()
	defer t.netMu.Unlock()
	return t.waitBootstrap(ctx, bc, setNetwork)
}

// Close releases t. A private tor is stopped (owning connection closed,
// SIGTERM, SIGKILL after a grace period), reaped, and its temporary files
// removed; a global tor is stopped when its last user closes it; for a
// system tor only our control connection is closed. Close is idempotent.
func (t *Tor) Close() error {
	t.closeOnce.Do(func() {
		switch {
		case t.release != nil:
			t.closeErr = t.release()
		default:
			t.closeErr = t.shutdown()
		}
	})
	return t.closeErr
}

// shutdown closes the connection and, for a tor we started, stops it.
func (t *Tor) shutdown() error {
	t.conn.Close()
	if t.proc == nil {
		return nil
	}
	if err := t.proc.Close(); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	return nil
}
