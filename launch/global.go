package launch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/gotorcon/tor/config"
)

// ErrGlobalConflict is returned (wrapped) by [Global] when the options ask
// for something the running global tor was not started with.
var ErrGlobalConflict = errors.New("launch: options conflict with the running global tor")

// globalTor is the shared tor of Global.
type globalTor struct {
	ready chan struct{} // closed once the start has finished
	err   error         // the start's error, set before ready is closed
	base  *Tor          // set before ready is closed on success
	opts  Options
	torrc *config.Torrc
	refs  int // guarded by global.mu
}

var global struct {
	mu  sync.Mutex
	cur *globalTor
}

// Global returns a handle on the one tor this program shares, starting it
// on first use with opts. Later calls share it when their options agree
// with the running tor's (same Path and DataDir when given; every torrc
// key they set has the same values; their Creator is not used), and otherwise fail with an error
// matching [ErrGlobalConflict]. A call without NoNetwork enables the
// network of a global tor started with NoNetwork and waits for its
// bootstrap. Each handle must be closed; the last Close stops the tor. When
// the global tor has exited, the next call starts a new one.
func Global(ctx context.Context, opts Options) (*Tor, error) {
	torrc, noNet, err := mergeTorrc(opts)
	if err != nil {
		return nil, err
	}
	wantNet := !noNet && !opts.NoNetwork
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("launch: global tor: %w", err)
		}
		global.mu.Lock()
		g := global.cur
		if g != nil && g.dead() {
			global.cur, g = nil, nil
		}
		if g == nil {
			g = &globalTor{ready: make(chan struct{}), opts: opts, torrc: torrc, refs: 1}
			global.cur = g
			global.mu.Unlock()
			return g.start(ctx, wantNet)
		}
		global.mu.Unlock()

		select {
		case <-g.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("launch: waiting for the global tor: %w", ctx.Err())
		}
		if g.err != nil {
			if errors.Is(g.err, context.Canceled) {
				continue // its starter gave up; try ourselves
			}
			return nil, fmt.Errorf("launch: global tor failed to start: %w", g.err)
		}
		if err := g.compatible(opts, torrc); err != nil {
			return nil, err
		}
		global.mu.Lock()
		if global.cur != g || g.dead() {
			global.mu.Unlock()
			continue // closed or died meanwhile
		}
		g.refs++
		global.mu.Unlock()
		h := g.handle(opts)
		if wantNet {
			if err := h.enableIfOff(ctx); err != nil {
				h.Close()
				return nil, err
			}
		}
		return h, nil
	}
}

// start runs the tor of a new globalTor; the caller holds its first
// reference.
func (g *globalTor) start(ctx context.Context, wantNet bool) (*Tor, error) {
	base, err := startPrivate(ctx, g.opts, g.torrc)
	if err == nil {
		if wantNet {
			err = base.enable(ctx, base.bootstrap, true)
			if err != nil {
				base.shutdown()
			}
		}
	}
	global.mu.Lock()
	if err != nil {
		g.err = err
		if global.cur == g {
			global.cur = nil
		}
	} else {
		g.base = base
	}
	global.mu.Unlock()
	close(g.ready)
	if err != nil {
		return nil, err
	}
	return g.handle(g.opts), nil
}

func (g *globalTor) dead() bool {
	select {
	case <-g.ready:
	default:
		return false
	}
	if g.base == nil {
		return true
	}
	select {
	case <-g.base.proc.Done():
		return true
	default:
		return false
	}
}

// handle returns a new reference (already counted) on the shared tor, with
// the caller's bootstrap callbacks.
func (g *globalTor) handle(opts Options) *Tor {
	b := g.base
	h := &Tor{
		conn:       b.conn,
		proc:       b.proc,
		ctlNetwork: b.ctlNetwork,
		ctlAddr:    b.ctlAddr,
		cookieFile: b.cookieFile,
		logger:     b.logger,
		bootstrap:  newBootstrapConfig(opts.BootstrapTimeout, opts.StallTimeout, opts.Progress, opts.Warning),
		netMu:      b.netMu,
	}
	h.release = func() error {
		global.mu.Lock()
		g.refs--
		last := g.refs == 0
		if last && global.cur == g {
			global.cur = nil
		}
		global.mu.Unlock()
		if last {
			return b.shutdown()
		}
		return nil
	}
	return h
}

// enableIfOff enables the network when it is still disabled, then waits
// for the bootstrap (a no-op when it is done).
func (h *Tor) enableIfOff(ctx context.Context) error {
	h.netMu.Lock()
	defer h.netMu.Unlock()
	entries, err := h.conn.GetConf(ctx, "DisableNetwork")
	if err != nil {
		return fmt.Errorf("launch: GETCONF DisableNetwork: %w", err)
	}
	off := len(entries) > 0 && entries[0].Value == "1"
	return h.waitBootstrap(ctx, h.bootstrap, off)
}

// compatible checks a later call's options against the running tor's.
func (g *globalTor) compatible(opts Options, torrc *config.Torrc) error {
	var why []string
	if opts.Path != "" && opts.Path != g.opts.Path {
		why = append(why, fmt.Sprintf("Path %q (running: %q)", opts.Path, g.opts.Path))
	}
	if opts.DataDir != "" && filepath.Clean(opts.DataDir) != filepath.Clean(g.opts.DataDir) {
		why = append(why, fmt.Sprintf("DataDir %q (running: %q)", opts.DataDir, g.opts.DataDir))
	}
	for _, k := range torrc.Keys() {
		want, have := torrc.Values(k), g.torrc.Values(k)
		if !slices.Equal(want, have) {
			if have == nil {
				why = append(why, fmt.Sprintf("%s %q (the running tor was started without it)", k, want))
			} else {
				why = append(why, fmt.Sprintf("%s %q (running: %q)", k, want, have))
			}
		}
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", ErrGlobalConflict, strings.Join(why, "; "))
	}
	return nil
}
