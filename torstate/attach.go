package torstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
)

// Attacher chooses the circuit of a new stream: it returns the ID of a
// BUILT circuit, or "" to let tor choose. ctx ends when the State's
// AttachTimeout has passed or the State is closed; the Attacher must
// return then. It is called on its own goroutine for each stream that
// waits (STREAM NEW or NEWRESOLVE, and DETACHED when tor takes a stream
// off a failing circuit), so it may block (to build a circuit, say) without
// holding up other streams or the State.
//
// A stream never stays unattached: if the Attacher returns an error,
// panics, or does not return within AttachTimeout, the stream is closed
// (CLOSESTREAM, reason MISC or TIMEOUT), so the client's request fails at
// once instead of hanging. Closing rather than handing the stream back to
// tor is deliberate: an Attacher exists to decide where streams go, and a
// stream it could not place must not leave on a path it did not choose.
// If tor refuses the chosen circuit (it is not BUILT, or gone), the stream
// is closed too.
type Attacher func(ctx context.Context, st Stream) (circuitID string, err error)

// attachState is the stream-attaching machinery: the Attacher, the
// circuits pinned by Dialers, and tor's __LeaveStreamsUnattached.
type attachState struct {
	mu       sync.Mutex
	fn       Attacher
	on       bool   // we set __LeaveStreamsUnattached 1
	wasOn    bool   // we did at some point (Close hands waiting streams back)
	orig     string // tor's value before
	pinned   map[string]string
	inflight map[string]bool
}

// ErrAttacher is wrapped by the errors logged for an Attacher that failed,
// panicked or timed out.
var ErrAttacher = errors.New("torstate: attacher failed")

// SetAttacher makes fn choose the circuit of every new stream (see
// Attacher): it sets tor's __LeaveStreamsUnattached to 1, so that tor
// leaves new streams for the controller. SetAttacher(ctx, nil) removes the
// attacher and, unless a Dialer still needs it, restores
// __LeaveStreamsUnattached to its value before; Close does so too.
//
// Streams only tor can attach never reach the Attacher: streams to .onion
// addresses (tor 0.4.9 leaves them for the controller too, but only tor
// can build their rendezvous circuit) are handed back to tor with
// ATTACHSTREAM id 0, and so would be tor's own directory streams (tor
// attaches those itself). Streams of a Dialer go to the Dialer's circuit
// without calling the Attacher; a Dialer's stream to an .onion address
// goes to tor like any other. Name resolutions through SOCKS (RESOLVE,
// status NEWRESOLVE) do reach the Attacher: they need an exit.
func (s *State) SetAttacher(ctx context.Context, fn Attacher) error {
	if err := s.closed(); err != nil {
		return err
	}
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fn = fn
	if fn == nil && len(a.pinned) == 0 {
		return s.leaveStreamsLocked(ctx, false)
	}
	return s.leaveStreamsLocked(ctx, true)
}

// leaveStreamsLocked turns tor's __LeaveStreamsUnattached on or back to
// its original value.
func (s *State) leaveStreamsLocked(ctx context.Context, on bool) error {
	a := &s.attach
	if on == a.on {
		return nil
	}
	if on {
		conf, err := s.c.GetConf(ctx, "__LeaveStreamsUnattached")
		if err != nil {
			return fmt.Errorf("torstate: GETCONF __LeaveStreamsUnattached: %w", err)
		}
		a.orig = "0"
		if len(conf) == 1 && !conf[0].Unset {
			a.orig = conf[0].Value
		}
		if err := s.c.SetConf(ctx, control.ConfEntry{Key: "__LeaveStreamsUnattached", Value: "1"}); err != nil {
			return fmt.Errorf("torstate: SETCONF __LeaveStreamsUnattached=1: %w", err)
		}
		a.on, a.wasOn = true, true
		if a.inflight == nil {
			a.inflight = map[string]bool{}
		}
		return nil
	}
	a.on = false
	if err := s.c.SetConf(ctx, control.ConfEntry{Key: "__LeaveStreamsUnattached", Value: a.orig}); err != nil {
		return fmt.Errorf("torstate: restoring __LeaveStreamsUnattached=%s: %w", a.orig, err)
	}
	return nil
}

// stopAttaching restores __LeaveStreamsUnattached (Close).
func (s *State) stopAttaching() error {
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fn = nil
	if !a.on {
		return nil
	}
	if s.c.Err() != nil {
		a.on = false
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return s.leaveStreamsLocked(ctx, false)
}

// handBackWaiting gives tor the streams that still wait for a controller
// after Close restored __LeaveStreamsUnattached (ATTACHSTREAM id 0; tor
// answers 555 for the streams it manages itself, which is ignored).
func (s *State) handBackWaiting() {
	a := &s.attach
	a.mu.Lock()
	wasOn := a.wasOn
	a.mu.Unlock()
	if !wasOn || s.c.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	streams, err := s.c.StreamStatus(ctx)
	if err != nil {
		return
	}
	for _, st := range streams {
		if (st.Status == "NEW" || st.Status == "NEWRESOLVE") && st.CircuitID == "0" {
			_ = s.c.AttachStream(ctx, st.ID, "0", 0)
		}
	}
}

// isTors reports the streams only tor can attach: to onion services, and
// tor's own directory streams.
func isTors(st Stream) bool {
	switch st.Purpose {
	case "DIR_FETCH", "DIR_UPLOAD", "DIRPORT_TEST":
		return true
	}
	return strings.HasSuffix(strings.ToLower(st.TargetHost), ".onion")
}

// streamWaiting starts the attachment of a stream that waits for a
// circuit (called by the run loop).
func (s *State) streamWaiting(st Stream) {
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.on || a.inflight[st.ID] {
		return
	}
	circ, pinned := "", false
	if st.SOCKSUsername != "" {
		circ, pinned = a.pinned[st.SOCKSUsername]
	}
	fn := a.fn
	if isTors(st) {
		// Tor 0.4.9 leaves streams to .onion addresses for the controller
		// too (CONTROLLER_WAIT); only tor can build their rendezvous
		// circuit, so they go back to it (ATTACHSTREAM id 0), as do tor's
		// own directory streams should one ever wait.
		fn, pinned = nil, false
	}
	s.inflightLocked(st.ID, func() { s.attachOne(st, fn, circ, pinned) })
}

// inflightLocked runs f on a goroutine of its own with stream id marked in
// flight until f returns, so that the stream is handled once; s.attach.mu
// is held.
func (s *State) inflightLocked(id string, f func()) {
	a := &s.attach
	a.inflight[id] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.inflight, id)
			a.mu.Unlock()
		}()
		f()
	}()
}

// streamLost closes a stream that may wait for the attacher but whose
// NEW event was lost (see resync); .onion streams are tor's.
func (s *State) streamLost(st Stream) {
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.on || a.inflight[st.ID] || isTors(st) {
		return
	}
	s.inflightLocked(st.ID, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), commandTimeout)
		defer cancel()
		s.log.Warn("torstate: closing a stream whose NEW event was lost", "stream", st.ID, "target", st.Target)
		if err := s.c.CloseStream(ctx, st.ID, ReasonMisc); err != nil && !isUnknown(err) && !isCode(err, 555) {
			s.log.Warn("torstate: CLOSESTREAM failed", "stream", st.ID, "err", err)
		}
	})
}

// attachOne decides and attaches one stream.
func (s *State) attachOne(st Stream, fn Attacher, circ string, pinned bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), commandTimeout)
	defer cancel()
	closeStream := func(reason int, why error) {
		s.log.Warn("torstate: closing a stream", "stream", st.ID, "target", st.Target, "status", st.Status, "reason", st.Reason, "remote_reason", st.RemoteReason, "err", why)
		if err := s.c.CloseStream(ctx, st.ID, reason); err != nil && !isUnknown(err) {
			s.log.Warn("torstate: CLOSESTREAM failed", "stream", st.ID, "err", err)
		}
	}
	switch {
	case pinned:
		if circ == "" {
			closeStream(ReasonMisc, errors.New("the Dialer's circuit is closed"))
			return
		}
		if st.Status == "DETACHED" {
			closeStream(ReasonMisc, fmt.Errorf("tor detached the stream from the Dialer's circuit %s", circ))
			return
		}
	case fn == nil:
		circ = "0"
	default:
		var err error
		circ, err = s.callAttacher(fn, st)
		if err != nil {
			reason := ReasonMisc
			if errors.Is(err, context.DeadlineExceeded) {
				reason = ReasonTimeout
			}
			closeStream(reason, err)
			return
		}
		if circ == "" {
			circ = "0"
		}
	}
	if err := s.c.AttachStream(ctx, st.ID, circ, 0); err != nil {
		if circ == "0" && isCode(err, 555) {
			return // tor manages it
		}
		closeStream(ReasonMisc, fmt.Errorf("ATTACHSTREAM %s %s: %w", st.ID, circ, err))
	}
}

// callAttacher runs fn with the timeout, turning a panic into an error.
func (s *State) callAttacher(fn Attacher, st Stream) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.AttachTimeout)
	defer cancel()
	type result struct {
		circ string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				res <- result{err: fmt.Errorf("%w: panic: %v", ErrAttacher, p)}
			}
		}()
		c, err := fn(ctx, st)
		res <- result{c, err}
	}()
	select {
	case r := <-res:
		if r.err != nil && !errors.Is(r.err, ErrAttacher) {
			r.err = fmt.Errorf("%w: %w", ErrAttacher, r.err)
		}
		return r.circ, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: no answer within %v: %w", ErrAttacher, s.opts.AttachTimeout, ctx.Err())
	}
}

// Dialer returns a SOCKS dialer whose streams all use the circuit with the
// given ID (txtorcon's stream_via). It has fresh isolation credentials of
// its own, by which the State recognises its streams and attaches them to
// the circuit, whatever the Attacher. The circuit must be live; when it
// closes, the Dialer's further streams are closed (its dials fail) rather
// than sent elsewhere. A Dialer needs __LeaveStreamsUnattached, which the
// State sets on the first call and restores on Close.
func (s *State) Dialer(ctx context.Context, circuitID string) (*onion.Dialer, error) {
	if err := s.closed(); err != nil {
		return nil, err
	}
	if _, ok := s.Circuit(circuitID); !ok {
		return nil, fmt.Errorf("torstate: no live circuit %q", circuitID)
	}
	v, err := s.c.GetInfoValue(ctx, "net/listeners/socks")
	if err != nil {
		return nil, fmt.Errorf("torstate: GETINFO net/listeners/socks: %w", err)
	}
	addrs, err := control.SplitQuoted(v)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("torstate: tor has no SOCKS listener (%q)", v)
	}
	d := onion.NewDialer(addrs[0]).Isolated()
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := s.leaveStreamsLocked(ctx, true); err != nil {
		return nil, err
	}
	if a.pinned == nil {
		a.pinned = map[string]string{}
	}
	a.pinned[d.Username] = circuitID
	// The circuit may have closed meanwhile.
	if _, ok := s.Circuit(circuitID); !ok {
		a.pinned[d.Username] = ""
	}
	return d, nil
}

// circuitEnded unpins the Dialers of a closed circuit.
func (s *State) circuitEnded(id string) {
	a := &s.attach
	a.mu.Lock()
	defer a.mu.Unlock()
	for u, c := range a.pinned {
		if c == id {
			a.pinned[u] = ""
		}
	}
}

func asError(err error, target **control.Error) bool { return errors.As(err, target) }

func isCode(err error, code int) bool {
	var e *control.Error
	return errors.As(err, &e) && e.Code == code
}
