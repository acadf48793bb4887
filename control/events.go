package control

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Event is an asynchronous event from tor (a 6xx reply), as received. Use
// [Event.Parsed] to decode its fields. Every subscription that wants
// an event receives the same *Event: treat it, and its parsed value, as
// read-only.
type Event struct {
	// Type is the event name, such as "CIRC" or "STATUS_CLIENT".
	Type string
	// Lines are the event's lines in order (usually one; CONF_CHANGED and
	// data events such as NS have several).
	Lines []Line

	one    [1]Line // Lines of a one-line event, allocated with it
	pstate int32   // evUnparsed ... evMalformed (atomic)
	parsed any     // the typed form or the parse error, once parsed
	// slot is zeroed memory for the typed form (see eventArena.slot) or,
	// until a subscriber of the connection parses, the connection's
	// *atomic.Bool flag that says it does, which Parsed sets.
	slot any
}

// eventArena hands the reader its Events and their text in blocks, so
// that receiving an event costs a share of an allocation rather than two:
// the reader's allocations were half of its time per event. Only the
// holder of the read role uses it (like Conn.scratch).
//
// Once a subscriber of the connection has called Event.Parsed, the arena
// also gives each event of a common type zeroed memory for its typed form
// (slot), so that the subscriber only fills it in. In a burst the reader
// is ahead and the subscribers, parsing, are what limits throughput: their
// allocations, fresh memory faulted in as the heap grows, were a third of
// their time per event.
//
// The price is shared memory: an Event keeps the block of Events it was
// handed out from (eventBlock of them), a typed form keeps its block of
// slotBlock, and the strings of an event and of its parsed form keep their
// text block (textBlock bytes). All are small; the package doc says to
// clone what is kept for long.
type eventArena struct {
	evs  []Event // the unused Events of the current block
	text []byte  // the unused room of the current text block

	circ      slab[circAlloc]
	circMinor slab[circMinorAlloc]
	stream    slab[StreamEvent]
	orconn    slab[ORConnEvent]
	bw        slab[BWEvent]
	circBW    slab[CircBWEvent]
	streamBW  slab[StreamBWEvent]
	status    slab[statusAlloc]
	hsDesc    slab[HSDescEvent]
}

// slotBlock is the number of typed forms a slab allocates at once.
const slotBlock = 16

// slab hands out zeroed Ts, allocated slotBlock at a time.
type slab[T any] struct{ free []T }

func (s *slab[T]) get() *T {
	if len(s.free) == 0 {
		s.free = make([]T, slotBlock)
	}
	p := &s.free[0]
	s.free = s.free[1:]
	return p
}

// slot returns zeroed memory for the typed form of an event of type typ,
// as the parser of that type takes it (see typed), or nil for the types
// whose events are rare: their parsers allocate.
func (a *eventArena) slot(typ string) any {
	switch typ {
	case "CIRC":
		return a.circ.get()
	case "CIRC_MINOR":
		return a.circMinor.get()
	case "STREAM":
		return a.stream.get()
	case "ORCONN":
		return a.orconn.get()
	case "BW":
		return a.bw.get()
	case "CIRC_BW":
		return a.circBW.get()
	case "STREAM_BW":
		return a.streamBW.get()
	case "STATUS_GENERAL", "STATUS_CLIENT", "STATUS_SERVER":
		return a.status.get()
	case "HS_DESC":
		return a.hsDesc.get()
	}
	return nil
}

// Sizes of the arena's blocks, 4 KiB each (a size class of Go's allocator,
// so nothing is lost to rounding): an Event is 128 bytes and a typical
// event's text 60–250, so each block serves a few dozen events.
const (
	eventBlock   = 4096 / int(unsafe.Sizeof(Event{}))
	textBlock    = 4096
	maxBlockText = textBlock / 4 // longer texts get their own allocation
)

func (a *eventArena) event() *Event {
	if len(a.evs) == 0 {
		a.evs = make([]Event, eventBlock)
	}
	ev := &a.evs[0]
	a.evs = a.evs[1:]
	return ev
}

// owned returns the bytes of rb as a string the caller may keep.
func (a *eventArena) owned(rb *replyBuf) string {
	if len(rb.b) > maxBlockText {
		return rb.owned()
	}
	return a.copy(rb.b)
}

// copy returns a string of b's bytes, from the current text block when b is
// short.
func (a *eventArena) copy(b []byte) string {
	n := len(b)
	if n > maxBlockText {
		return string(b)
	}
	if n == 0 {
		return ""
	}
	if n > cap(a.text)-len(a.text) {
		a.text = make([]byte, 0, textBlock)
	}
	start := len(a.text)
	a.text = append(a.text, b...)
	// The bytes handed out are never written again: later events are
	// appended after them, and a full block is replaced, not reused.
	return unsafe.String(&a.text[start], n)
}

// eventFromBuf makes an Event that owns the bytes of the reply in rb, from
// the arena.
func eventFromBuf(typLen int, rb *replyBuf, a *eventArena) *Event {
	s := a.owned(rb)
	ev := a.event()
	if len(rb.offs) == 1 {
		ev.Lines = fillLines(ev.one[:0], s, rb.offs)
	} else {
		ev.Lines = fillLines(make([]Line, 0, len(rb.offs)), s, rb.offs)
	}
	ev.Type = ev.Lines[0].Text[:typLen] // shares the event's bytes
	return ev
}

// lineEvent makes the Event of a one-line 650 reply whose text (after
// "650 ") is text, from the arena.
func (a *eventArena) lineEvent(typLen int, text []byte) *Event {
	s := a.copy(text)
	ev := a.event()
	ev.one[0] = Line{Code: 650, Sep: ' ', Text: s}
	ev.Lines = ev.one[:]
	ev.Type = s[:typLen]
	return ev
}

// Parsed returns the typed form of the event: *[StatusEvent],
// *[CircEvent], *[CircMinorEvent], *[StreamEvent], *[ORConnEvent],
// *[BWEvent], *[CircBWEvent], *[StreamBWEvent], *[AddrMapEvent],
// *[SignalEvent], *[NetworkLivenessEvent], *[GuardEvent], *[NewDescEvent],
// *[NSEvent] (NS and NEWCONSENSUS), *[LogEvent] (DEBUG ... ERR),
// *[ConfChangedEvent], *[HSDescEvent], *[HSDescContentEvent] or
// *[BuildTimeoutSetEvent]; an event type without a typed form is returned
// as the *Event itself, not an error. A malformed event gives an error
// matching [ErrMalformedEvent]. The
// event is parsed once, by the first caller; every other subscriber that
// received the same *Event gets the same value, which must be treated as
// read-only.
func (e *Event) Parsed() (any, error) {
	// An event that carries the flag instead of a slot may be the first
	// parsed on its connection: from now on the reader gives events a
	// slot. (An event with a slot does not touch the flag, which sits
	// next to the reader's own data.)
	if f, ok := e.slot.(*atomic.Bool); ok && !f.Load() {
		f.Store(true)
	}
	for {
		switch atomic.LoadInt32(&e.pstate) {
		case evParsed:
			return e.parsed, nil
		case evMalformed:
			return nil, e.parsed.(error)
		case evUnparsed:
			if atomic.CompareAndSwapInt32(&e.pstate, evUnparsed, evParsing) {
				e.parseOnce()
				continue
			}
		}
		runtime.Gosched() // another subscriber is parsing it right now
	}
}

// Event.pstate values.
const (
	evUnparsed  = iota
	evParsing   // by one subscriber; the others wait
	evParsed    // parsed holds the typed form
	evMalformed // parsed holds the error
)

// parseOnce parses e; other subscribers wait for it in Parsed, so it marks
// e parsed even if a parser panics (they then get an error).
func (e *Event) parseOnce() {
	defer func() {
		if atomic.LoadInt32(&e.pstate) == evParsing {
			e.parsed = fmt.Errorf("%w: %s: parser panicked", ErrMalformedEvent, e.Type)
			atomic.StoreInt32(&e.pstate, evMalformed)
		}
	}()
	v, err := parseEvent(e)
	if err != nil {
		e.parsed = err
		atomic.StoreInt32(&e.pstate, evMalformed)
		return
	}
	e.parsed = v
	atomic.StoreInt32(&e.pstate, evParsed)
}

func newEvent(r *Reply) *Event {
	t := r.Lines[0].Text
	if i := strings.IndexByte(t, ' '); i >= 0 {
		t = t[:i]
	}
	return &Event{Type: t, Lines: r.Lines}
}

// Code returns the status code of the event's first line (650).
func (e *Event) Code() int { return e.Lines[0].Code }

// Text returns the first line after the event name and its space: the
// event's arguments.
func (e *Event) Text() string {
	t := e.Lines[0].Text
	if i := strings.IndexByte(t, ' '); i >= 0 {
		return t[i+1:]
	}
	return ""
}

// Data returns the data block of the first line that has one ("" if none).
func (e *Event) Data() string {
	for _, l := range e.Lines {
		if l.HasData() {
			return l.Data
		}
	}
	return ""
}

// Args parses the arguments of the event's first line (see [ParseArgs]):
// every keyword argument, including those the typed form returned by
// [Event.Parsed] has no field for. It parses the text again on each call.
func (e *Event) Args() (Args, error) { return ParseArgs(e.Text()) }

// String renders the event as on the wire.
func (e *Event) String() string { return (&Reply{Lines: e.Lines}).String() }

// DefaultEventBuffer is the number of events a [Subscription] buffers when
// SubscribeOptions.Buffer is zero.
const DefaultEventBuffer = 1024

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	// Buffer is the capacity of the subscription's channel;
	// DefaultEventBuffer when zero.
	Buffer int
	// DropOldest selects the overflow policy when the buffer is full: by
	// default the new event is dropped (the subscriber sees a prefix of
	// the stream, then a gap); with DropOldest the oldest buffered event is
	// dropped to make room (the subscriber sees the most recent events).
	// Either way the connection never waits for a subscriber, and every
	// dropped event is counted in Subscription.Dropped.
	DropOldest bool
}

// Subscription is a stream of tor events of the types it was created for.
// Its channel is closed by Close or when the connection ends.
type Subscription struct {
	c          *Conn
	names      []string // upper case, sorted
	ch         chan *Event
	dropOldest bool
	dropped    atomic.Uint64
}

// Events returns the channel on which events arrive, in the order tor sent
// them. It is closed when the subscription or the connection is closed.
func (s *Subscription) Events() <-chan *Event { return s.ch }

// Names returns the event names of the subscription (upper case, sorted).
func (s *Subscription) Names() []string { return slices.Clone(s.names) }

// Dropped returns the number of events dropped because the subscriber's
// buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// setRouteLocked recomputes c.route from c.subs, so that the reader finds
// the subscriptions of an event type with one map lookup however many
// there are. subsMu is held for writing.
func (c *Conn) setRouteLocked() {
	route := make(map[string][]*Subscription)
	for _, s := range c.subs {
		for _, n := range s.names {
			route[n] = append(route[n], s)
		}
	}
	c.route = route
}

func (s *Subscription) deliver(ev *Event) {
	select {
	case s.ch <- ev:
		return
	default:
	}
	if s.dropOldest {
		select {
		case <-s.ch:
		default:
		}
		select {
		case s.ch <- ev:
		default:
		}
	}
	s.dropped.Add(1)
}

// Close ends the subscription: its channel is closed, and tor is told to
// stop sending event types no other subscription wants (without waiting for
// the answer). Close does not block and is safe to call more than once.
func (s *Subscription) Close() error {
	c := s.c
	c.subsMu.Lock()
	i := slices.Index(c.subs, s)
	if i < 0 {
		c.subsMu.Unlock()
		return nil
	}
	c.subs = slices.Delete(c.subs, i, i+1)
	c.setRouteLocked()
	close(s.ch)
	c.subsMu.Unlock()
	c.maskMu.Lock()
	c.updateMaskLocked(true)
	c.maskMu.Unlock()
	return nil
}

// dispatch hands the event in rb to every subscription that wants it. It
// never blocks, and it makes the *Event only if someone wants it.
func (c *Conn) dispatch(rb *replyBuf) {
	o := rb.offs[0]
	c.subsMu.RLock()
	if ev, subs := c.routeEvent(rb.b[o.ts:o.te], rb); ev != nil {
		for _, s := range subs {
			s.deliver(ev)
		}
	}
	c.subsMu.RUnlock()
}

// dispatchBuffered dispatches the one-line events at the head of the read
// buffer ("650 TYPE ...", nearly every event tor sends), all those wholly
// buffered. Each text is copied once, from the read buffer to the event's
// memory, where a reply is copied twice. The run is routed under one read
// lock, and its events are handed to the subscriptions after it is parsed
// (at most maxRun at a time).
func (c *Conn) dispatchBuffered() {
	text, n := c.rd.bufferedEventLine()
	if n == 0 {
		return
	}
	c.subsMu.RLock()
	for n != 0 {
		if ev, subs := c.routeEvent(text, nil); ev != nil {
			c.run = append(c.run, routed{ev, subs})
			if len(c.run) == maxRun {
				c.deliverRunLocked()
			}
		}
		c.rd.discard(n)
		text, n = c.rd.bufferedEventLine()
	}
	c.deliverRunLocked()
	c.subsMu.RUnlock()
}

// maxRun bounds how many events dispatchBuffered holds before handing them
// to the subscriptions.
const maxRun = 64

// routed is an event and the subscriptions it goes to.
type routed struct {
	ev   *Event
	subs []*Subscription
}

// deliverRunLocked hands the events of c.run to their subscriptions. subsMu
// is held for reading (since the events were routed).
func (c *Conn) deliverRunLocked() {
	for i, r := range c.run {
		for _, s := range r.subs {
			s.deliver(r.ev)
		}
		c.run[i] = routed{}
	}
	c.run = c.run[:0]
}

// routeEvent returns the subscriptions that want the event whose first
// line's text is first, and the *Event made for them (from rb, or the
// one-line 650 event first when rb is nil); nil if nobody wants it. subsMu
// is held for reading.
func (c *Conn) routeEvent(first []byte, rb *replyBuf) (*Event, []*Subscription) {
	typ := first
	if i := bytes.IndexByte(first, ' '); i >= 0 {
		typ = first[:i]
	}
	if len(typ) == 0 {
		c.log.Warn("control: dropped an event without a type", "event", trimForError(string(first)))
		return nil, nil
	}
	subs := c.route[string(typ)] // no allocation for the key
	if len(subs) == 0 {
		return nil, nil
	}
	var ev *Event
	if rb != nil {
		ev = eventFromBuf(len(typ), rb, &c.arena)
	} else {
		ev = c.arena.lineEvent(len(typ), first)
	}
	if c.parsing.Load() {
		ev.slot = c.arena.slot(ev.Type)
	} else {
		ev.slot = &c.parsing
	}
	return ev, subs
}

// Subscribe starts a subscription to the named events (case-insensitive,
// such as "CIRC", "STATUS_CLIENT", "HS_DESC"). Names are checked against
// tor's GETINFO events/names first, because one unknown name makes tor
// reject the whole SETEVENTS. When Subscribe returns, tor has applied the
// new event mask: a command issued afterwards cannot miss events it causes.
//
// Any number of subscriptions may be live at once; the connection keeps
// tor's event mask equal to the union of their names. Each subscription has
// its own bounded buffer (see [SubscribeOptions]); a subscriber that does
// not read never delays command replies or other subscribers.
func (c *Conn) Subscribe(ctx context.Context, names ...string) (*Subscription, error) {
	return c.SubscribeWith(ctx, SubscribeOptions{}, names...)
}

// SubscribeWith is Subscribe with options.
func (c *Conn) SubscribeWith(ctx context.Context, opts SubscribeOptions, names ...string) (*Subscription, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no event names", ErrInvalidArgument)
	}
	norm := make([]string, 0, len(names))
	for _, n := range names {
		if err := CheckToken("event name", n); err != nil {
			return nil, err
		}
		norm = append(norm, strings.ToUpper(n))
	}
	slices.Sort(norm)
	norm = slices.Compact(norm)
	if err := c.checkEventNames(ctx, norm); err != nil {
		return nil, err
	}
	size := opts.Buffer
	if size <= 0 {
		size = DefaultEventBuffer
	}
	s := &Subscription{c: c, names: norm, ch: make(chan *Event, size), dropOldest: opts.DropOldest}

	c.subsMu.Lock()
	select {
	case <-c.done:
		c.subsMu.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.closedErr()
	default:
	}
	c.subs = append(c.subs, s)
	c.setRouteLocked()
	c.subsMu.Unlock()

	// The first attempt may wait for a SETEVENTS sent by someone else; if
	// that one failed, the mask is marked unknown and the second attempt
	// sends our own.
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		c.maskMu.Lock()
		r, sent := c.updateMaskLocked(false)
		c.maskMu.Unlock()
		err = c.waitMask(ctx, r)
		if err == nil || sent || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// updateMaskLocked computes the union of the live subscriptions and, when it
// differs from what was last sent, enqueues a SETEVENTS. It returns the
// request that establishes the current mask (nil if none was ever needed)
// and whether it was sent by this call.
func (c *Conn) updateMaskLocked(async bool) (*request, bool) {
	c.subsMu.RLock()
	var all []string
	for _, s := range c.subs {
		all = append(all, s.names...)
	}
	c.subsMu.RUnlock()
	slices.Sort(all)
	all = slices.Compact(all)
	mask := strings.Join(all, " ")
	if c.maskReq != nil && mask == c.mask {
		return c.maskReq, false
	}
	if c.maskReq == nil && mask == "" {
		return nil, false
	}
	line := "SETEVENTS"
	if mask != "" {
		line += " " + mask
	}
	r := newRequest("SETEVENTS", line, nil)
	r.late = func(rep *Reply) {
		if !rep.OK() {
			c.log.Warn("control: SETEVENTS failed", "err", replyError("SETEVENTS", rep))
		}
	}
	c.mask, c.maskReq = mask, r
	if async {
		c.send(r)
	} else if err := c.submit(r); err != nil {
		r.err = err
		close(r.done)
	}
	return r, true
}

// waitMask waits until the SETEVENTS request r (possibly sent by another
// caller) has been answered. When it failed, the mask is marked unknown so
// that the next change resends it.
func (c *Conn) waitMask(ctx context.Context, r *request) error {
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if !r.async && (r.state.CompareAndSwap(stQueued, stCancelled) || r.state.CompareAndSwap(stWritten, stAbandoned)) {
			c.forgetMask(r)
			return ctx.Err()
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := r.err
	if err == nil {
		err = replyError("SETEVENTS", r.reply)
	}
	if err != nil {
		c.forgetMask(r)
	}
	return err
}

func (c *Conn) forgetMask(r *request) {
	c.maskMu.Lock()
	if c.maskReq == r {
		c.maskReq, c.mask = nil, ""
	}
	c.maskMu.Unlock()
}

// checkEventNames refuses names that tor's GETINFO events/names does not
// list (fetched once per connection; skipped if tor does not know the key).
func (c *Conn) checkEventNames(ctx context.Context, names []string) error {
	c.maskMu.Lock()
	known, ok := c.eventNames, c.namesKnown
	c.maskMu.Unlock()
	if !ok {
		v, err := c.GetInfoValue(ctx, "events/names")
		switch {
		case err == nil:
			known = map[string]bool{}
			for _, n := range strings.Fields(v) {
				known[n] = true
			}
		case isCode(err, 552):
			known = nil // an old tor: let SETEVENTS decide
		default:
			return err
		}
		c.maskMu.Lock()
		c.eventNames, c.namesKnown = known, true
		c.maskMu.Unlock()
	}
	if known == nil {
		return nil
	}
	for _, n := range names {
		if !known[n] {
			return fmt.Errorf("%w: %w: tor does not know the event %q (see GETINFO events/names)", ErrInvalidArgument, ErrUnrecognizedEntity, n)
		}
	}
	return nil
}

// SetEvents sends SETEVENTS with exactly these names, replacing tor's event
// mask. Events still go only to subscriptions that asked for them, and the
// next Subscribe or Subscription.Close sets the mask back to the union of
// the live subscriptions: most programs want [Conn.Subscribe] instead.
func (c *Conn) SetEvents(ctx context.Context, names ...string) error {
	line := "SETEVENTS"
	for _, n := range names {
		if err := CheckToken("event name", n); err != nil {
			return err
		}
		line += " " + n
	}
	c.maskMu.Lock()
	c.mask, c.maskReq = "", nil
	c.maskMu.Unlock()
	return c.requestOK(ctx, line)
}
