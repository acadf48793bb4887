package torstate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gotorcon/tor/control"
)

// BuildCircuit asks tor for a new circuit through path (relay fingerprints,
// with or without '$', or nicknames; first hop first) and waits until tor
// reports it BUILT. A nil path lets tor choose the relays. The circuit has
// the GENERAL purpose, so tor may also use it for streams of its own
// choosing; pin streams to it with Dialer or an Attacher.
//
// If tor reports the circuit FAILED or CLOSED first, the error is a
// *CircuitError (matching ErrCircuitFailed) with tor's reason. If ctx ends
// first, the half-built circuit is closed and ctx's error returned.
func (s *State) BuildCircuit(ctx context.Context, path []string) (Circuit, error) {
	if err := s.closed(); err != nil {
		return Circuit{}, err
	}
	hops := make([]string, len(path))
	for i, p := range path {
		hops[i] = strings.TrimPrefix(p, "$")
	}
	id, err := s.c.ExtendCircuit(ctx, "0", hops, "")
	if err != nil {
		return Circuit{}, fmt.Errorf("torstate: EXTENDCIRCUIT: %w", err)
	}
	w := make(chan *Circuit, 1)
	s.mu.Lock()
	s.waiters[id] = append(s.waiters[id], w)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiters[id] = slices.DeleteFunc(s.waiters[id], func(x chan *Circuit) bool { return x == w })
		if len(s.waiters[id]) == 0 {
			delete(s.waiters, id)
		}
		s.mu.Unlock()
	}()
	for {
		// The circuit's current state: events may have been applied
		// before the waiter was registered.
		s.mu.RLock()
		c, live := s.circuits[id]
		end, ended := s.ended[id]
		s.mu.RUnlock()
		switch {
		case ended:
			return *end, &CircuitError{ID: id, Status: end.Status, Reason: end.Reason, RemoteReason: end.RemoteReason}
		case live && c.Status == "BUILT":
			return *c, nil
		}
		select {
		case _, ok := <-w:
			if !ok {
				return Circuit{}, ErrClosed
			}
		case <-s.done:
			return Circuit{}, s.closed()
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandTimeout)
			if err := s.c.CloseCircuit(cctx, id, false); err != nil && !isUnknown(err) {
				s.log.Warn("torstate: closing an abandoned circuit", "circuit", id, "err", err)
			}
			cancel()
			return Circuit{}, fmt.Errorf("torstate: building circuit %s: %w", id, ctx.Err())
		}
	}
}

// isUnknown reports tor's 552 (no such circuit or stream: already gone).
func isUnknown(err error) bool {
	var e *control.Error
	return asError(err, &e) && e.Code == 552
}

// CloseCircuit closes a circuit, and with it its streams.
func (s *State) CloseCircuit(ctx context.Context, id string) error {
	if err := s.c.CloseCircuit(ctx, id, false); err != nil {
		return fmt.Errorf("torstate: CLOSECIRCUIT %s: %w", id, err)
	}
	return nil
}

// Stream close reasons (tor-spec §6.3, RELAY_END), for CloseStream.
const (
	ReasonMisc       = 1
	ReasonTimeout    = 7
	ReasonDone       = 6
	ReasonExitPolicy = 4
)

// CloseStream closes a stream with a RELAY_END reason (ReasonMisc, ...).
func (s *State) CloseStream(ctx context.Context, id string, reason int) error {
	if err := s.c.CloseStream(ctx, id, reason); err != nil {
		return fmt.Errorf("torstate: CLOSESTREAM %s: %w", id, err)
	}
	return nil
}
