package launch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/process"
)

// ErrBootstrapTimeout is the cause of a bootstrap wait stopped by
// Options.BootstrapTimeout. It matches context.DeadlineExceeded.
var ErrBootstrapTimeout = fmt.Errorf("BootstrapTimeout reached: %w", context.DeadlineExceeded)

// ErrBootstrapStalled is the cause of a bootstrap wait stopped because tor
// made no progress for Options.StallTimeout (2 minutes when zero). The error matches context.DeadlineExceeded too.
var ErrBootstrapStalled = errors.New("no bootstrap progress")

// defaultStallTimeout is how long a bootstrap may stay at one step before
// the wait gives up, when Options.StallTimeout is zero. Tor on a working
// network moves to its next step within seconds; on a blocked or offline
// machine it stays at 0–10 % for good.
const defaultStallTimeout = 2 * time.Minute

// BootstrapError reports a bootstrap that did not reach 100 %.
type BootstrapError struct {
	// Last is the last progress reached (nil when none was seen).
	Last *control.Bootstrap
	// Problem is the last bootstrap problem tor reported (nil when none).
	Problem *control.Bootstrap
	// Lines are tor's last warn/err log lines (private and global tors).
	Lines []string
	// Err is why the wait stopped: the context's error or cause
	// (ErrBootstrapTimeout, ErrBootstrapStalled), tor exiting (process.ErrExited), or a control
	// connection error.
	Err error
}

func (e *BootstrapError) Error() string {
	var b strings.Builder
	b.WriteString("launch: bootstrap ")
	if e.Last != nil {
		fmt.Fprintf(&b, "stopped at %d%% (%s: %s)", e.Last.Progress, e.Last.Tag, e.Last.Summary)
	} else {
		b.WriteString("did not start")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if p := e.Problem; p != nil {
		fmt.Fprintf(&b, "; last problem: %s (%s, count %d, recommendation %s", p.Warning, p.Reason, p.Count, p.Recommendation)
		if p.HostAddr != "" {
			fmt.Fprintf(&b, ", host %s", p.HostAddr)
		}
		b.WriteString(")")
	}
	if len(e.Lines) > 0 && !errors.Is(e.Err, process.ErrExited) { // an ExitError already has them
		q := make([]string, len(e.Lines))
		for i, l := range e.Lines {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			q[i] = strconv.Quote(l)
		}
		b.WriteString("; tor said: ")
		b.WriteString(strings.Join(q, ", "))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *BootstrapError) Unwrap() error { return e.Err }

type bootstrapConfig struct {
	timeout  time.Duration
	stall    time.Duration // < 0: never
	progress func(*control.Bootstrap)
	warning  func(*control.Bootstrap)
}

func newBootstrapConfig(timeout, stall time.Duration, progress, warning func(*control.Bootstrap)) bootstrapConfig {
	if stall == 0 {
		stall = defaultStallTimeout
	}
	return bootstrapConfig{timeout: timeout, stall: stall, progress: progress, warning: warning}
}

// waitBootstrap subscribes to STATUS_CLIENT, reads the current phase, then
// (setNetwork) enables the network, and waits for PROGRESS=100.
func (t *Tor) waitBootstrap(ctx context.Context, bc bootstrapConfig, setNetwork bool) error {
	if bc.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, bc.timeout, ErrBootstrapTimeout)
		defer cancel()
	}
	var last, problem *control.Bootstrap
	// The stall timer runs from the start of the wait and restarts at each
	// new step.
	var stallC <-chan time.Time
	var stall *time.Timer
	if bc.stall > 0 {
		stall = time.NewTimer(bc.stall)
		defer stall.Stop()
		stallC = stall.C
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		} else if t.proc != nil {
			// A lost control connection usually means tor died: give the
			// process a moment to be reaped so its exit is the error (a
			// loaded machine can take hundreds of ms); otherwise tor is
			// most likely alive and a short look is enough.
			wait := 100 * time.Millisecond
			if ce := (*control.ClosedError)(nil); errors.As(err, &ce) {
				wait = time.Second
			}
			select {
			case <-t.proc.Done():
				if perr := t.proc.Err(); perr != nil {
					err = perr
				}
			case <-time.After(wait):
			}
		}
		be := &BootstrapError{Last: last, Problem: problem, Err: err}
		if t.proc != nil {
			be.Lines = t.proc.Warnings()
		}
		return be
	}
	// handle records b and reports whether bootstrap is done.
	handle := func(b *control.Bootstrap) bool {
		if b.Warning != "" || b.Severity == "WARN" {
			problem = b
			t.logger.Debug("tor bootstrap problem", "progress", b.Progress, "warning", b.Warning, "reason", b.Reason, "count", b.Count, "recommendation", b.Recommendation)
			if strings.EqualFold(b.Recommendation, "warn") && bc.warning != nil {
				bc.warning(b)
			}
			return false
		}
		if last != nil && (b.Progress < last.Progress || (b.Progress == last.Progress && b.Tag == last.Tag)) {
			return last.Progress >= 100
		}
		last = b
		if stall != nil {
			stall.Reset(bc.stall)
		}
		t.logger.Debug("tor bootstrap", "progress", b.Progress, "tag", b.Tag, "summary", b.Summary)
		if bc.progress != nil {
			bc.progress(b)
		}
		return b.Progress >= 100
	}

	sub, err := t.conn.Subscribe(ctx, "STATUS_CLIENT")
	if err != nil {
		return fail(fmt.Errorf("subscribe to STATUS_CLIENT: %w", err))
	}
	defer sub.Close()
	v, err := t.conn.GetInfoValue(ctx, "status/bootstrap-phase")
	if err != nil {
		return fail(fmt.Errorf("GETINFO status/bootstrap-phase: %w", err))
	}
	b, err := control.ParseBootstrap(v)
	if err != nil {
		return fail(fmt.Errorf("GETINFO status/bootstrap-phase: %w", err))
	}
	done := handle(b)
	// Enable even when the phase says 100: a tor whose network was disabled
	// again after its bootstrap still reports 100.
	if setNetwork {
		if err := t.conn.SetConf(ctx, control.ConfEntry{Key: "DisableNetwork", Value: "0"}); err != nil {
			return fail(fmt.Errorf("SETCONF DisableNetwork=0: %w", err))
		}
	}
	if done {
		return nil
	}
	var procDone <-chan struct{}
	if t.proc != nil {
		procDone = t.proc.Done()
	}
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				cause := t.conn.Err()
				if cause == nil {
					cause = errors.New("subscription closed")
				}
				return fail(&control.ClosedError{Cause: cause})
			}
			p, err := ev.Parsed()
			se, ok := p.(*control.StatusEvent)
			if !ok {
				t.logger.Debug("unparsable STATUS_CLIENT event", "event", ev.String(), "err", err)
				continue
			}
			if b, ok := se.Bootstrap(); ok && handle(b) {
				return nil
			}
		case <-procDone:
			return fail(process.ErrExited)
		case <-stallC:
			return fail(fmt.Errorf("%w for %v (StallTimeout): %w", ErrBootstrapStalled, bc.stall, context.DeadlineExceeded))
		case <-ctx.Done():
			return fail(context.Cause(ctx))
		}
	}
}
