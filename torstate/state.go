package torstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotorcon/tor/control"
)

// Options configure New. The zero value is ready to use.
type Options struct {
	// Logger receives problems the State works around (a lost event, an
	// attacher that failed); default: discarded.
	Logger *slog.Logger
	// AttachTimeout bounds each call of an Attacher (default
	// DefaultAttachTimeout).
	AttachTimeout time.Duration
	// EventBuffer is the number of tor events buffered between the
	// control connection's reader and the State (default 65536). Should it
	// overflow, the State reads tor's state again.
	EventBuffer int
}

// DefaultAttachTimeout is the default bound on an Attacher call.
const DefaultAttachTimeout = 10 * time.Second

// commandTimeout bounds the commands the State sends on its own (attach,
// close, restore).
const commandTimeout = 30 * time.Second

// events are the event types the State follows.
var events = []string{"CIRC", "CIRC_MINOR", "STREAM", "ORCONN", "GUARD", "NEWCONSENSUS", "NS"}

// ORConn is one of tor's connections to a relay.
type ORConn struct {
	// Target is the relay ("$FP~nick") or address:port.
	Target string
	// Status is NEW, LAUNCHED or CONNECTED.
	Status string
	ID     string // "" for connections of the snapshot
}

// State is tor's live set of relays, circuits and streams, kept in sync
// with tor by its events. Its methods are safe for concurrent use; the
// values they return are copies.
type State struct {
	c    *control.Conn
	opts Options
	log  *slog.Logger
	sub  *control.Subscription

	mu        sync.RWMutex
	relays    map[string]*Relay // by fingerprint
	byName    map[string]string // nickname -> fingerprint
	circuits  map[string]*Circuit
	streams   map[string]*Stream
	orconns   map[string]*ORConn // by target
	guards    []control.EntryGuard
	ended     map[string]*Circuit // recently FAILED/CLOSED circuits, for BuildCircuit
	endedFIFO []string
	waiters   map[string][]chan *Circuit
	countries map[string]string // address -> country code
	geoip     bool
	dropped   uint64 // sub.Dropped() at the last snapshot
	applied   atomic.Uint64

	watchMu  sync.Mutex
	watchers []*Subscription

	attach attachState

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // run loop and attach goroutines
	done   chan struct{}  // closed when the run loop has ended

	closeOnce sync.Once
	closeErr  error
}

// New reads tor's circuits, streams, connections, guards and consensus
// from c and keeps them in sync until Close (or until c ends). It
// subscribes to the events it needs first, then reads the snapshot with
// GETINFO, then applies the events that arrived in between, so no change
// falls between the two. c must stay open while the State is used; Close
// does not close it.
func New(ctx context.Context, c *control.Conn, opts *Options) (*State, error) {
	s := &State{c: c}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.AttachTimeout <= 0 {
		s.opts.AttachTimeout = DefaultAttachTimeout
	}
	if s.opts.EventBuffer <= 0 {
		s.opts.EventBuffer = 1 << 16
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.init()
	sub, err := c.SubscribeWith(ctx, control.SubscribeOptions{Buffer: s.opts.EventBuffer}, events...)
	if err != nil {
		return nil, fmt.Errorf("torstate: %w", err)
	}
	s.sub = sub
	if err := s.snapshot(ctx); err != nil {
		sub.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan struct{})
	s.wg.Add(1)
	go s.run()
	return s, nil
}

func (s *State) init() {
	s.relays = map[string]*Relay{}
	s.byName = map[string]string{}
	s.circuits = map[string]*Circuit{}
	s.streams = map[string]*Stream{}
	s.orconns = map[string]*ORConn{}
	s.ended = map[string]*Circuit{}
	s.waiters = map[string][]chan *Circuit{}
	s.countries = map[string]string{}
}

// snapshot reads everything from tor and replaces the state's maps.
func (s *State) snapshot(ctx context.Context) error {
	dropped := s.sub.Dropped()
	m, err := s.c.GetInfo(ctx, "circuit-status", "stream-status", "orconn-status", "entry-guards")
	if err != nil {
		return fmt.Errorf("torstate: reading tor's state: %w", err)
	}
	circs, err := control.ParseCircuitStatus(m[0])
	if err != nil {
		return fmt.Errorf("torstate: %w", err)
	}
	streams, err := control.ParseStreamStatus(m[1])
	if err != nil {
		return fmt.Errorf("torstate: %w", err)
	}
	orconns, err := control.ParseORConnStatus(m[2])
	if err != nil {
		return fmt.Errorf("torstate: %w", err)
	}
	guards, err := control.ParseEntryGuards(m[3])
	if err != nil {
		return fmt.Errorf("torstate: %w", err)
	}
	// The consensus separately: a tor that has none yet answers an error,
	// and NEWCONSENSUS will bring it.
	var routers []*control.RouterStatus
	if v, err := s.c.GetInfoValue(ctx, "ns/all"); err == nil {
		if routers, err = control.ParseRouterStatus(v); err != nil {
			return fmt.Errorf("torstate: GETINFO ns/all: %w", err)
		}
	} else if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
		return fmt.Errorf("torstate: GETINFO ns/all: %w", err)
	} else {
		s.log.Info("torstate: no consensus yet", "err", err)
	}
	geoip := false
	if v, err := s.c.GetInfoValue(ctx, "ip-to-country/ipv4-available"); err == nil && v == "1" {
		geoip = true
	}
	s.mu.Lock()
	s.geoip = geoip
	s.mu.Unlock()
	countries := s.lookupCountries(ctx, routers)

	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range countries {
		s.countries[k] = v
	}
	s.setRelaysLocked(routers, true)
	s.circuits = make(map[string]*Circuit, len(circs))
	for _, e := range circs {
		if e.Status == "FAILED" || e.Status == "CLOSED" {
			continue
		}
		s.circuits[e.ID] = s.circuitFromEvent(e)
	}
	s.streams = make(map[string]*Stream, len(streams))
	for _, e := range streams {
		st := &Stream{}
		mergeStream(st, e)
		s.streams[e.ID] = st
	}
	s.orconns = make(map[string]*ORConn, len(orconns))
	for _, e := range orconns {
		s.orconns[e.Target] = &ORConn{Target: e.Target, Status: e.Status, ID: e.ID}
	}
	s.guards = guards
	s.dropped = dropped
	return nil
}

// lookupCountries asks tor's GeoIP database for the countries of the
// routers' addresses not yet known, in batches; it returns what it found
// (nothing when tor has no GeoIP data).
func (s *State) lookupCountries(ctx context.Context, routers []*control.RouterStatus) map[string]string {
	s.mu.RLock()
	geoip := s.geoip
	var todo []string
	seen := map[string]bool{}
	for _, r := range routers {
		if _, ok := s.countries[r.Address]; !ok && !seen[r.Address] && control.CheckToken("address", r.Address) == nil {
			seen[r.Address] = true
			todo = append(todo, r.Address)
		}
	}
	s.mu.RUnlock()
	out := map[string]string{}
	if !geoip {
		return out
	}
	const batch = 1000
	for len(todo) > 0 {
		n := min(batch, len(todo))
		keys := make([]string, n)
		for i, a := range todo[:n] {
			keys[i] = "ip-to-country/" + a
		}
		todo = todo[n:]
		m, err := s.c.GetInfo(ctx, keys...)
		if err != nil {
			s.log.Warn("torstate: GeoIP lookup failed; countries left empty", "err", err)
			return out
		}
		for i, v := range m {
			if v == "??" {
				v = ""
			}
			out[strings.TrimPrefix(keys[i], "ip-to-country/")] = v
		}
	}
	return out
}

// setRelaysLocked replaces (all) or updates the relays.
func (s *State) setRelaysLocked(routers []*control.RouterStatus, all bool) {
	if all {
		s.relays = make(map[string]*Relay, len(routers))
		s.byName = make(map[string]string, len(routers))
	}
	for _, r := range routers {
		rel := &Relay{RouterStatus: *r, Country: s.countries[r.Address]}
		s.relays[r.Fingerprint] = rel
		s.byName[r.Nickname] = r.Fingerprint
	}
}

func (s *State) pathLocked(p []control.Relay) []Relay {
	if len(p) == 0 {
		return nil
	}
	out := make([]Relay, len(p))
	for i, h := range p {
		if r, ok := s.relays[h.Fingerprint]; ok {
			out[i] = *r
		} else {
			out[i].Fingerprint, out[i].Nickname = h.Fingerprint, h.Nickname
		}
	}
	return out
}

func (s *State) circuitFromEvent(e *control.CircEvent) *Circuit {
	return &Circuit{ID: e.ID, Status: e.Status, Path: s.pathLocked(e.Path), Purpose: e.Purpose,
		HSState: e.HSState, RendQuery: e.RendQuery, BuildFlags: e.BuildFlags, Created: e.TimeCreated,
		Reason: e.Reason, RemoteReason: e.RemoteReason, SOCKSUsername: e.SOCKSUsername}
}

// mergeStream applies a STREAM event (or stream-status line) to st: fields
// tor sends only in some events (SOURCE_ADDR, PURPOSE) are kept.
func mergeStream(st *Stream, e *control.StreamEvent) {
	st.ID = e.ID
	switch e.Status {
	case "REMAP", "XOFF_SENT", "XOFF_RECV", "XON_SENT", "XON_RECV":
		if st.Status == "" {
			st.Status = "NEW"
		}
	default:
		st.Status = e.Status
	}
	st.CircuitID = e.CircuitID
	st.Target, st.TargetHost, st.TargetPort = e.Target, e.TargetHost, e.TargetPort
	if e.SourceAddr != "" {
		st.SourceAddr = e.SourceAddr
	}
	if e.Purpose != "" {
		st.Purpose = e.Purpose
	}
	if e.SOCKSUsername != "" {
		st.SOCKSUsername = e.SOCKSUsername
	}
	if e.SOCKSPassword != "" {
		st.SOCKSPassword = e.SOCKSPassword
	}
	st.Reason, st.RemoteReason = e.Reason, e.RemoteReason
}

// run applies events until the subscription ends.
func (s *State) run() {
	defer s.wg.Done()
	defer s.closeWatchers() // and closes done
	for ev := range s.sub.Events() {
		s.apply(ev)
		if d := s.sub.Dropped(); d != s.dropped {
			s.resync(d)
		}
	}
}

// resync reads tor's state again after the subscription lost events. The
// events still buffered are dropped first: they may be older than the gap,
// and applied on top of the new snapshot they could bring back a circuit
// whose CLOSED event was lost. Every event after them is also newer than
// the drain, so applying it on top of the snapshot is safe.
func (s *State) resync(dropped uint64) {
	s.log.Warn("torstate: events were lost; reading tor's state again", "lost", dropped-s.dropped)
drain:
	for {
		select {
		case _, ok := <-s.sub.Events():
			if !ok {
				break drain
			}
		default:
			break drain
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, commandTimeout)
	err := s.snapshot(ctx)
	cancel()
	if err != nil {
		s.log.Warn("torstate: reading tor's state again failed", "err", err)
		s.mu.Lock()
		s.dropped = dropped
		s.mu.Unlock()
		return
	}
	// A stream whose NEW event was lost may wait for the attacher; without
	// its event the State cannot tell whose it is, so it is closed.
	for _, st := range s.Streams() {
		if (st.Status == "NEW" || st.Status == "NEWRESOLVE") && st.CircuitID == "0" {
			s.streamLost(st)
		}
	}
	s.publish(Change{Resynced: true})
}

// apply applies one event to the state and tells subscribers.
func (s *State) apply(ev *control.Event) {
	s.applied.Add(1)
	if ev.Type == "GUARD" { // the event says a guard changed; read them all
		ctx, cancel := context.WithTimeout(s.ctx, commandTimeout)
		g, err := s.c.EntryGuards(ctx)
		cancel()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.guards = g
		s.mu.Unlock()
		s.publish(Change{Guards: true})
		return
	}
	p, err := ev.Parsed()
	if err != nil {
		s.log.Warn("torstate: ignoring a malformed event", "type", ev.Type, "err", err)
		return
	}
	switch e := p.(type) {
	case *control.CircEvent:
		s.applyCirc(e)
	case *control.CircMinorEvent:
		s.mu.Lock()
		c, ok := s.circuits[e.ID]
		if ok {
			n := *c
			n.Purpose, n.HSState, n.RendQuery, n.BuildFlags = e.Purpose, e.HSState, e.RendQuery, e.BuildFlags
			if len(e.Path) > 0 {
				n.Path = s.pathLocked(e.Path)
			}
			s.circuits[e.ID] = &n
			c = &n
		}
		s.mu.Unlock()
		if ok {
			s.publish(Change{Circuit: c})
		}
	case *control.StreamEvent:
		s.applyStream(e)
	case *control.ORConnEvent:
		s.mu.Lock()
		switch e.Status {
		case "CLOSED", "FAILED":
			delete(s.orconns, e.Target)
		default:
			s.orconns[e.Target] = &ORConn{Target: e.Target, Status: e.Status, ID: e.ID}
		}
		s.mu.Unlock()
	case *control.NSEvent:
		rs, err := e.Routers()
		if err != nil {
			s.log.Warn("torstate: ignoring a malformed consensus", "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, commandTimeout)
		countries := s.lookupCountries(ctx, rs)
		cancel()
		s.mu.Lock()
		for k, v := range countries {
			s.countries[k] = v
		}
		s.setRelaysLocked(rs, ev.Type == "NEWCONSENSUS")
		s.mu.Unlock()
		s.publish(Change{Relays: true})
	}
}

const maxEnded = 4096

func (s *State) applyCirc(e *control.CircEvent) {
	s.mu.Lock()
	c := s.circuitFromEvent(e)
	if old, ok := s.circuits[e.ID]; ok {
		if len(c.Path) == 0 {
			c.Path = old.Path
		}
		if c.SOCKSUsername == "" {
			c.SOCKSUsername = old.SOCKSUsername
		}
	}
	ended := e.Status == "FAILED" || e.Status == "CLOSED"
	if ended {
		delete(s.circuits, e.ID)
		// FAILED is followed by CLOSED; BuildCircuit reports the first.
		if _, ok := s.ended[e.ID]; !ok {
			s.ended[e.ID] = c
			s.endedFIFO = append(s.endedFIFO, e.ID)
			if len(s.endedFIFO) > maxEnded {
				delete(s.ended, s.endedFIFO[0])
				s.endedFIFO = s.endedFIFO[1:]
			}
		}
	} else {
		s.circuits[e.ID] = c
	}
	for _, w := range s.waiters[e.ID] {
		select {
		case w <- c:
		default: // the waiter holds an undelivered update; it re-reads
		}
	}
	s.mu.Unlock()
	if ended {
		s.circuitEnded(e.ID)
	}
	s.publish(Change{Circuit: c})
}

func (s *State) applyStream(e *control.StreamEvent) {
	s.mu.Lock()
	st := &Stream{}
	if old, ok := s.streams[e.ID]; ok {
		*st = *old
	}
	mergeStream(st, e)
	switch e.Status {
	case "FAILED", "CLOSED":
		delete(s.streams, e.ID)
	default:
		s.streams[e.ID] = st
	}
	s.mu.Unlock()
	switch e.Status {
	case "NEW", "NEWRESOLVE", "DETACHED":
		if e.CircuitID == "0" || e.Status == "DETACHED" {
			s.streamWaiting(*st)
		}
	}
	s.publish(Change{Stream: st})
}

// publish sends ch to every subscription without waiting.
func (s *State) publish(ch Change) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for _, w := range s.watchers {
		w.deliver(ch)
	}
}

// Subscription is a stream of Changes (see State.Subscribe).
type Subscription struct {
	s       *State
	ch      chan Change
	dropped atomic.Uint64
	closed  bool
}

// Subscribe returns a subscription to the state's changes, in the order
// tor reported them, with a buffer of the given size (1024 when not
// positive). A subscriber that falls behind loses changes (counted by
// Dropped) and never slows the State down; it can re-read the state
// (Circuits, Streams) at any time. The channel is closed by Close or when
// the State ends.
func (s *State) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = 1024
	}
	w := &Subscription{s: s, ch: make(chan Change, buffer)}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	select {
	case <-s.done:
		w.closed = true
		close(w.ch)
		return w
	default:
	}
	s.watchers = append(s.watchers, w)
	return w
}

// Changes returns the channel on which changes arrive.
func (w *Subscription) Changes() <-chan Change { return w.ch }

// Dropped returns the number of changes lost because the buffer was full.
func (w *Subscription) Dropped() uint64 { return w.dropped.Load() }

// Close ends the subscription and closes its channel. It is safe to call
// more than once.
func (w *Subscription) Close() {
	s := w.s
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	s.watchers = slices.DeleteFunc(s.watchers, func(x *Subscription) bool { return x == w })
	close(w.ch)
}

func (w *Subscription) deliver(ch Change) {
	select {
	case w.ch <- ch:
	default:
		w.dropped.Add(1)
	}
}

// closeWatchers closes done and every subscription, under watchMu so that
// no Subscribe slips in between.
func (s *State) closeWatchers() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	close(s.done)
	for _, w := range s.watchers {
		w.closed = true
		close(w.ch)
	}
	s.watchers = nil
}

// Done is closed when the State stops following tor: after Close, or when
// the control connection has ended.
func (s *State) Done() <-chan struct{} { return s.done }

// Circuits returns the live circuits, by increasing ID.
func (s *State) Circuits() []Circuit {
	s.mu.RLock()
	out := make([]Circuit, 0, len(s.circuits))
	for _, c := range s.circuits {
		out = append(out, *c)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Circuit) int { return cmpID(a.ID, b.ID) })
	return out
}

// Circuit returns the circuit with the given ID, if it is live.
func (s *State) Circuit(id string) (Circuit, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.circuits[id]
	if !ok {
		return Circuit{}, false
	}
	return *c, true
}

// Streams returns the live streams, by increasing ID.
func (s *State) Streams() []Stream {
	s.mu.RLock()
	out := make([]Stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, *st)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Stream) int { return cmpID(a.ID, b.ID) })
	return out
}

// Stream returns the stream with the given ID, if it is live.
func (s *State) Stream(id string) (Stream, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.streams[id]
	if !ok {
		return Stream{}, false
	}
	return *st, true
}

// Relays returns the relays of the current consensus, by fingerprint.
func (s *State) Relays() []Relay {
	s.mu.RLock()
	out := make([]Relay, 0, len(s.relays))
	for _, r := range s.relays {
		out = append(out, *r)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Relay) int { return strings.Compare(a.Fingerprint, b.Fingerprint) })
	return out
}

// Relay returns the relay with the given fingerprint ("$" allowed) or, if
// no fingerprint matches, nickname.
func (s *State) Relay(name string) (Relay, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fp := strings.ToUpper(strings.TrimPrefix(name, "$"))
	if r, ok := s.relays[fp]; ok {
		return *r, true
	}
	if fp, ok := s.byName[name]; ok {
		if r, ok := s.relays[fp]; ok {
			return *r, true
		}
	}
	return Relay{}, false
}

// Guards returns tor's entry guards (GETINFO entry-guards, read again on
// every GUARD event).
func (s *State) Guards() []control.EntryGuard {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.guards)
}

// ORConns returns tor's connections to relays.
func (s *State) ORConns() []ORConn {
	s.mu.RLock()
	out := make([]ORConn, 0, len(s.orconns))
	for _, o := range s.orconns {
		out = append(out, *o)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b ORConn) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// EventsApplied returns the number of tor events the State has applied.
func (s *State) EventsApplied() uint64 { return s.applied.Load() }

// cmpID orders tor's numeric IDs numerically (others after, as strings).
func cmpID(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

func (s *State) closed() error {
	select {
	case <-s.done:
		if err := s.c.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return ErrClosed
	default:
		return nil
	}
}

// Close stops following tor. If the State set __LeaveStreamsUnattached
// (SetAttacher, Dialer), it restores tor's value first, and streams still
// waiting for the attacher are handed back to tor. Subscriptions' channels
// are closed and every goroutine of the State has ended when Close
// returns. The control connection stays open. Close is idempotent.
func (s *State) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.stopAttaching()
		s.cancel()
		s.sub.Close()
		s.wg.Wait()
		s.handBackWaiting()
		s.mu.Lock()
		for id, ws := range s.waiters {
			for _, w := range ws {
				close(w)
			}
			delete(s.waiters, id)
		}
		s.mu.Unlock()
	})
	return s.closeErr
}
