package torstate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotorcon/tor/control"
)

// Relay is a relay of tor's current consensus. It embeds the consensus
// entry (fingerprint, nickname, address, ports, flags, bandwidth, ...).
// A relay of a circuit path that is not in the consensus (a bridge, or a
// relay of an older consensus) has only Fingerprint and Nickname.
type Relay struct {
	control.RouterStatus
	// Country is the two-letter country code of Address from tor's GeoIP
	// database (GETINFO ip-to-country), lower case; "" when tor has no
	// GeoIP data or does not know the address (private addresses).
	Country string
}

// Circuit is one of tor's origin circuits, as the last CIRC event (or the
// snapshot) described it.
type Circuit struct {
	ID string
	// Status is LAUNCHED, EXTENDED, GUARD_WAIT or BUILT while the circuit
	// lives; FAILED or CLOSED in the last Change about it.
	Status string
	// Path is the relays of the circuit, first hop first (the hops built so
	// far while the circuit is being built).
	Path []Relay
	// Purpose is GENERAL, HS_CLIENT_REND, HS_VANGUARDS, CONTROLLER, ...
	Purpose string
	// HSState and RendQuery are set on onion-service circuits.
	HSState   string
	RendQuery string
	// BuildFlags such as ONEHOP_TUNNEL, IS_INTERNAL, NEED_CAPACITY.
	BuildFlags []string
	Created    time.Time
	// Reason and RemoteReason say why a circuit FAILED or CLOSED.
	Reason, RemoteReason string
	// SOCKSUsername is the isolation username of the streams the circuit
	// was built for, if any.
	SOCKSUsername string
}

// Fingerprints returns the fingerprints of the circuit's path.
func (c *Circuit) Fingerprints() []string {
	fps := make([]string, len(c.Path))
	for i, r := range c.Path {
		fps[i] = r.Fingerprint
	}
	return fps
}

// String renders the circuit as "ID STATUS nick1,nick2,nick3".
func (c *Circuit) String() string {
	names := make([]string, len(c.Path))
	for i, r := range c.Path {
		names[i] = r.Nickname
		if names[i] == "" {
			names[i] = "$" + r.Fingerprint
		}
	}
	return c.ID + " " + c.Status + " " + strings.Join(names, ",")
}

// Stream is one of tor's client streams, as the last STREAM event (or the
// snapshot) described it.
type Stream struct {
	ID string
	// Status is NEW, NEWRESOLVE, CONTROLLER_WAIT, SENTCONNECT, SENTRESOLVE,
	// SUCCEEDED or DETACHED while the stream lives; FAILED or CLOSED in
	// the last Change about it. REMAP and the flow-control statuses
	// (XOFF_SENT, ...) are events, not states: they leave Status as it was.
	Status string
	// CircuitID is "0" while the stream is not attached.
	CircuitID string
	// Target is "host:port"; TargetHost and TargetPort split it.
	Target     string
	TargetHost string
	TargetPort int
	// SourceAddr is the client's address ("127.0.0.1:50838"); tor sends it
	// only in the NEW event, so it is "" for streams of the snapshot.
	SourceAddr string
	// Purpose is USER, DIR_FETCH, DNS_REQUEST, ... (NEW event only).
	Purpose string
	// SOCKSUsername and SOCKSPassword are the client's isolation
	// credentials.
	SOCKSUsername, SOCKSPassword string
	// Reason and RemoteReason say why a stream FAILED or CLOSED.
	Reason, RemoteReason string
}

// Change is one change of the state, sent to subscriptions (see
// State.Subscribe). Exactly one of its fields is set.
type Change struct {
	// Circuit is the new state of a circuit; a circuit whose Status is
	// FAILED or CLOSED has left the state.
	Circuit *Circuit
	// Stream is the new state of a stream; FAILED and CLOSED streams have
	// left the state.
	Stream *Stream
	// Relays is set when the relays changed (a new consensus, or NS
	// events).
	Relays bool
	// Guards is set when the entry guards changed.
	Guards bool
	// Resynced is set after the state was read again from tor because
	// events were lost: any part of it may have changed.
	Resynced bool
}

// ErrCircuitFailed is matched by a *CircuitError.
var ErrCircuitFailed = errors.New("torstate: circuit failed")

// CircuitError is the error of BuildCircuit when tor reports the circuit
// FAILED or CLOSED before it was built.
type CircuitError struct {
	ID     string
	Status string // FAILED or CLOSED
	// Reason is tor's REASON (TIMEOUT, DESTROYED, CHANNEL_CLOSED, NOPATH,
	// ...) and RemoteReason the relay's, when there is one.
	Reason, RemoteReason string
}

func (e *CircuitError) Error() string {
	s := fmt.Sprintf("torstate: circuit %s %s", e.ID, e.Status)
	if e.Reason != "" {
		s += " (reason " + e.Reason
		if e.RemoteReason != "" {
			s += ", remote reason " + e.RemoteReason
		}
		s += ")"
	}
	return s
}

// Is reports whether target is ErrCircuitFailed.
func (e *CircuitError) Is(target error) bool { return target == ErrCircuitFailed }

// ErrClosed is matched by the errors of a State's methods after Close, or
// once its control connection has ended.
var ErrClosed = errors.New("torstate: state closed")
