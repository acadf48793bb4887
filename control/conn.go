package control

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a connection to tor's control port. All methods are safe for
// concurrent use: commands from any number of goroutines are pipelined
// (written without waiting for earlier replies, and coalesced into as few
// writes as possible) and their replies matched in order. Asynchronous
// events are routed to [Subscription]s.
//
// A Conn owns one reader and one writer goroutine; both end, and every
// pending call fails with an error matching net.ErrClosed, when [Conn.Close]
// is called or the connection ends for any other reason. A caller whose
// command is the only one in flight writes it and reads its reply itself
// (see the package documentation, Concurrency).
type Conn struct {
	nc   net.Conn
	log  *slog.Logger
	rd   *replyReader
	rand io.Reader
	opts options

	mu      sync.Mutex
	queue   []*request // accepted, not yet taken by the writer
	pending []*request // written, waiting for their reply, oldest first
	// writing is set while one goroutine (a caller writing its own command,
	// or the writer goroutine) holds the right to write; commands submitted
	// meanwhile are queued, and the holder hands the role to the writer
	// goroutine if the queue is not empty when it is done.
	writing  bool
	leftover []byte     // tail of a command a caller's write did not finish
	raw      *rawWriter // non-blocking writes; nil if nc does not allow them
	closed   bool
	cause    error
	wake     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup

	// reading says who holds the read role (see readOwn): the reader
	// goroutine (rdLoop), nobody (rdIdle), or a caller reading its own
	// reply (rdCaller). Only the holder uses rd and scratch.
	reading  int
	readWake chan struct{} // wakes the reader goroutine when it gets the role back
	lends    uint64        // calls that took the idle role; see awaitReadRole
	submits  uint64        // commands submitted, to tell a command alone in flight
	// idleReclaim is how long the role may stay idle unused before the
	// reader goroutine takes it back: the constant idleReclaim, which
	// tests may change.
	idleReclaim time.Duration

	scratch replyBuf    // the read role's buffer for the reply being read
	arena   eventArena  // the read role's memory for events
	run     []routed    // the read role's events parsed but not yet delivered (see dispatchBuffered)
	parsing atomic.Bool // a subscriber has called Event.Parsed (see eventArena)

	// Events. subsMu guards subs and the subscriptions' channels (the
	// reader sends under a read lock; Close closes under the write lock).
	subsMu sync.RWMutex
	subs   []*Subscription
	route  map[string][]*Subscription // event type → subs that want it (see setRouteLocked)
	// maskMu orders SETEVENTS: the union is computed and the command
	// enqueued under it, so the last SETEVENTS on the wire reflects the
	// latest set of subscriptions.
	maskMu     sync.Mutex
	mask       string   // argument of the last SETEVENTS sent
	maskReq    *request // that SETEVENTS request
	eventNames map[string]bool
	namesKnown bool

	piMu sync.Mutex
	pi   *ProtocolInfo
}

type options struct {
	log          *slog.Logger
	maxReplySize int
}

// Option configures a Conn made by [Dial] or [NewConn].
type Option func(*options)

// WithLogger sets the logger for diagnostics (dropped late replies,
// malformed events, undone ADD_ONION). The default discards them. Secrets
// (passwords, cookies, keys) are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMaxReplySize sets the cap on the size of one reply or event; see
// [DefaultMaxReplySize].
func WithMaxReplySize(n int) Option { return func(o *options) { o.maxReplySize = n } }

// Dial connects to tor's control port at address on network ("tcp" or
// "unix"). The connection is not authenticated yet: call
// [Conn.Authenticate] next (or use [Connect], which does both).
func Dial(ctx context.Context, network, address string, opts ...Option) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil { // a *net.OpError: it names the address
		if network == "unix" && errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("control: %w (the socket belongs to tor's group: join it, e.g. sudo adduser $USER debian-tor, and log in again)", err)
		}
		return nil, fmt.Errorf("control: %w", err)
	}
	return NewConn(nc, opts...), nil
}

// Connect dials tor's control port and authenticates (see
// [Conn.Authenticate]). On failure the connection is closed.
func Connect(ctx context.Context, network, address string, auth []AuthOption, opts ...Option) (*Conn, error) {
	c, err := Dial(ctx, network, address, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Authenticate(ctx, auth...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// NewConn wraps an established connection to a control port, for example
// one end of a socketpair whose other end was given to tor as
// __OwningControllerFD (such a connection starts authenticated). The Conn
// takes ownership of nc and starts its reader and writer goroutines.
func NewConn(nc net.Conn, opts ...Option) *Conn {
	c := &Conn{
		nc:       nc,
		rand:     rand.Reader,
		wake:     make(chan struct{}, 1),
		readWake: make(chan struct{}, 1),
		done:     make(chan struct{}),

		idleReclaim: idleReclaim,
	}
	for _, o := range opts {
		o(&c.opts)
	}
	c.log = c.opts.log
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.rd = newReplyReader(newRawReader(nc), c.opts.maxReplySize)
	c.raw = newRawWriter(nc)
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// Close closes the connection, fails every pending call with an error
// matching net.ErrClosed, closes every subscription's channel and waits for
// the connection's goroutines to end. It is safe to call more than once.
func (c *Conn) Close() error {
	c.shutdown(net.ErrClosed)
	c.wg.Wait()
	return nil
}

// Done returns a channel that is closed when the connection has ended, for
// any reason (Close, tor closing it, a read or write error, a protocol
// error). Err then reports the cause.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open and the reason it ended
// afterwards: net.ErrClosed after Close, io.EOF when tor closed it, or the
// read, write or protocol error.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// Request states.
const (
	stQueued    int32 = iota // waiting to be written
	stWritten                // written, reply outstanding
	stCancelled              // cancelled before being written: never written
	stAbandoned              // cancelled after being written: reply to be dropped
	stReplied                // reply delivered
)

type request struct {
	cmd   string  // keyword, for errors and logs
	line  string  // command line, encoded into wire by submit
	data  *string // data block of a multi-line command
	wire  []byte  // the command as written: line, CRLF, data block
	state atomic.Int32
	reply *Reply
	err   error
	// done receives one value (pooled requests, whose channel is reused)
	// or is closed (all others) when the reply or an error is there.
	done chan struct{}
	// pooled requests come from reqPool: their reply is read into rb
	// (swapped with the reader's buffer, no copy) and viewed through rep.
	pooled bool
	rb     replyBuf
	rep    Reply
	// ownsReply is set when reply is not a view of rb but memory of its
	// own that the caller may keep (a big reply).
	ownsReply bool
	// async requests have no waiter; late is called with their reply.
	async bool
	// alone is set when the command was written with nothing else in
	// flight; mark is Conn.submits then. If no command was submitted
	// since when its reply comes, it was alone for its whole round trip.
	alone bool
	mark  uint64
	// While a caller reads its own reply (readOwn) with a ctx that can end,
	// stop unregisters interrupt, which wakes the read when ctx ends and
	// then signals interrupted. interrupt is made once per request (pooled
	// requests keep it) and reads conn, set for the call.
	stop        func() bool
	interrupt   func()
	interrupted chan struct{}
	conn        *Conn
	// late is called (on the reader goroutine; it must not block) with the
	// reply of a request whose caller gave up after it was written.
	late func(*Reply)
}

func newRequest(cmd, line string, data *string) *request {
	return &request{cmd: cmd, line: line, data: data, done: make(chan struct{})}
}

var reqPool = sync.Pool{New: func() any {
	return &request{pooled: true, done: make(chan struct{}, 1)}
}}

// getRequest returns a pooled request; the caller fills cmd and wire.
func getRequest(cmd string) *request {
	r := reqPool.Get().(*request)
	r.cmd = cmd
	r.state.Store(stQueued)
	return r
}

// putRequest returns r to the pool. Only a request whose reply was
// delivered to its waiter may be put back: nothing else refers to it then.
func putRequest(r *request) {
	r.reply, r.err, r.rep.Lines, r.ownsReply = nil, nil, nil, false
	r.rb.release()
	if cap(r.wire) > 4096 {
		r.wire = nil
	}
	r.wire = r.wire[:0]
	reqPool.Put(r)
}

func (r *request) finish() {
	if r.pooled {
		r.done <- struct{}{}
	} else {
		close(r.done)
	}
}

// commandName returns the keyword of a command line, for errors.
func commandName(line string) string {
	if i := strings.IndexByte(line, ' '); i >= 0 {
		line = line[:i]
	}
	return strings.ToUpper(strings.TrimPrefix(line, "+"))
}

func (c *Conn) closedErr() error { return &ClosedError{Cause: c.cause} }

// submit checks r's length and sends it: written at once by the calling
// goroutine when no other command is being written or awaits its reply (a
// non-blocking write; what the socket does not take is handed to the writer
// goroutine), otherwise queued for the writer goroutine, which coalesces
// everything queued into one write. It is the one place every command
// passes through.
func (c *Conn) submit(r *request) error {
	_, err := c.submitReading(r, false)
	return err
}

// submitReading is submit for a caller that offers (own) to read r's
// reply itself: it reports whether the caller got the read role for that
// (then it must call readOwn), which happens only when the role is idle and
// r is the only command in flight.
func (c *Conn) submitReading(r *request, own bool) (reading bool, err error) {
	if r.wire == nil {
		r.wire = appendCommand(nil, r.line, r.data)
	}
	if len(r.wire) > maxCommandBytes {
		return false, tooLong(r)
	}
	c.mu.Lock()
	if c.closed {
		err := c.closedErr()
		c.mu.Unlock()
		return false, err
	}
	// A caller writes its own command only when nothing else is in flight
	// (the sequential case, where a hand-over to the writer goroutine
	// costs most). With commands in flight, the writer goroutine coalesces
	// them into one write: fewer writes for tor to read.
	c.submits++
	r.alone = false
	if c.writing || c.raw == nil || len(c.pending) > 0 {
		c.queue = append(c.queue, r)
		start := !c.writing
		c.writing = true
		wakeReader := c.takeReadRoleLocked()
		c.mu.Unlock()
		if start {
			c.wakeWriter()
		}
		if wakeReader {
			c.wakeReader()
		}
		return false, nil
	}
	// This goroutine writes: nobody else is writing, and until it clears
	// c.writing nobody else will.
	c.writing = true
	r.state.Store(stWritten)
	c.pending = append(c.pending, r)
	r.alone, r.mark = true, c.submits
	wakeReader := false
	if own && c.reading == rdIdle {
		c.reading = rdCaller
		c.lends++
		reading = true
	} else {
		wakeReader = c.takeReadRoleLocked()
	}
	c.mu.Unlock()
	if wakeReader {
		c.wakeReader()
	}
	n, err := c.raw.write(r.wire)
	if err != nil {
		c.shutdown(fmt.Errorf("write: %w", err))
		return false, nil // r was pending: shutdown failed it
	}
	c.mu.Lock()
	if n < len(r.wire) {
		c.leftover = r.wire[n:]
	}
	if c.leftover != nil || len(c.queue) > 0 {
		c.mu.Unlock()
		c.wakeWriter() // the writer goroutine takes over c.writing
		return reading, nil
	}
	c.writing = false
	c.mu.Unlock()
	return reading, nil
}

// wakeWriter hands the writing role to the writer goroutine. The role is
// held by one goroutine at a time and the writer consumes one wake-up per
// hand-over, so the send never blocks.
func (c *Conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// takeReadRoleLocked gives an idle read role back to the reader goroutine,
// because a command is about to be in flight whose reply its caller does
// not read itself. It reports whether the reader goroutine must be woken.
// c.mu is held.
func (c *Conn) takeReadRoleLocked() bool {
	if c.reading != rdIdle {
		return false
	}
	c.reading = rdLoop
	return true
}

// wakeReader tells the reader goroutine that it holds the read role again.
func (c *Conn) wakeReader() {
	select {
	case c.readWake <- struct{}{}:
	default:
	}
}

// roundTrip sends r and waits for its reply. A non-2xx reply is returned
// together with a *Error.
func (c *Conn) roundTrip(ctx context.Context, r *request) (*Reply, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reading, err := c.submitReading(r, true)
	if err != nil {
		return nil, err
	}
	if reading {
		return c.readOwn(ctx, r)
	}
	return r.wait(ctx)
}

// wait waits for the reply of a submitted request.
func (r *request) wait(ctx context.Context) (*Reply, error) {
	if done := ctx.Done(); done == nil {
		<-r.done // a context that never ends
	} else {
		select {
		case <-r.done:
		case <-done:
			if r.state.CompareAndSwap(stQueued, stCancelled) ||
				r.state.CompareAndSwap(stWritten, stAbandoned) {
				return nil, ctx.Err()
			}
			<-r.done // the reply is being delivered right now
		}
	}
	return r.result()
}

// result returns the reply or error of a request whose reply was delivered
// or which failed.
func (r *request) result() (*Reply, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.reply.OK() && r.pooled && !r.ownsReply {
		// An error keeps the reply's lines: give it its own copy.
		r.reply = r.rb.reply()
	}
	return r.reply, replyError(r.cmd, r.reply)
}

// Call is a command in flight, started with [Conn.Start].
type Call struct {
	r *request
}

// Start sends one raw command line like [Conn.Request] but does not wait
// for the reply: one goroutine can pipeline many commands and collect the
// replies later with [Call.Wait], in any order.
func (c *Conn) Start(line string) (*Call, error) {
	if err := checkLine(line); err != nil {
		return nil, err
	}
	r := newRequest(commandName(line), line, nil)
	if err := c.submit(r); err != nil {
		return nil, err
	}
	return &Call{r: r}, nil
}

// Done is closed when the reply has arrived or the connection has ended.
func (call *Call) Done() <-chan struct{} { return call.r.done }

// Wait waits for the reply, as Request does. If ctx ends first, Wait
// returns ctx.Err() and the reply is dropped when it arrives; Wait must not
// be called again after that.
func (call *Call) Wait(ctx context.Context) (*Reply, error) { return call.r.wait(ctx) }

// send submits r without waiting; its reply goes to r.late.
func (c *Conn) send(r *request) {
	r.async = true
	if err := c.submit(r); err != nil {
		c.log.Debug("control: command not sent", "command", r.cmd, "err", err)
		r.err = err
		close(r.done)
	}
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	var (
		buf   []byte
		batch []*request
	)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// This goroutine holds the writing role now. Let goroutines that
		// are ready to run (typically callers just woken by replies) queue
		// their next commands, so that they go out in this write rather
		// than one write each.
		runtime.Gosched()
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return
			}
			buf = append(buf[:0], c.leftover...)
			c.leftover = nil
			batch, c.queue = c.queue, batch[:0]
			for _, r := range batch {
				if r.state.CompareAndSwap(stQueued, stWritten) {
					c.pending = append(c.pending, r)
					buf = append(buf, r.wire...)
				}
			}
			if len(buf) == 0 {
				c.writing = false
				c.mu.Unlock()
				break
			}
			c.mu.Unlock()
			clear(batch)
			var err error
			if c.raw != nil {
				err = c.raw.writeAll(buf)
			} else {
				_, err = c.nc.Write(buf)
			}
			if err != nil {
				c.shutdown(fmt.Errorf("write: %w", err))
				return
			}
			if cap(buf) > 1<<20 {
				buf = nil // don't keep a huge buffer after a big command
			}
		}
	}
}

// Read role states (Conn.reading).
const (
	rdLoop   = iota // the reader goroutine reads
	rdIdle          // nobody reads: nothing is in flight and nobody subscribes
	rdCaller        // a caller reads its own reply (readOwn)
)

// idleReclaim is how long the read role may stay unused (rdIdle) before the
// reader goroutine takes it back and reads again, so that tor closing an
// idle connection is noticed (Done) within about this time.
const idleReclaim = 2 * time.Millisecond

// aLongTimeAgo is a read deadline in the past: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (c *Conn) readLoop() {
	defer c.wg.Done()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	for {
		if !c.awaitReadRole(idle) {
			return
		}
		// The role stays the goroutine's until it gives it up itself
		// (handleReply), so a run of buffered events needs no check in
		// between.
		c.dispatchBuffered()
		if err := c.rd.readInto(&c.scratch); err != nil {
			c.shutdown(err)
			return
		}
		if _, ok := c.handleReply(nil); !ok {
			return
		}
	}
}

// awaitReadRole returns when the reader goroutine holds the read role
// (true) or the connection has ended (false). While the role is idle or lent
// to a caller, the goroutine waits to be handed it back, and takes it back
// itself once it has been idle for idleReclaim with no caller using it.
func (c *Conn) awaitReadRole(idle *time.Timer) bool {
	c.mu.Lock()
	if c.reading == rdLoop {
		c.mu.Unlock()
		return true
	}
	seen, wait := c.lends, c.idleReclaim
	c.mu.Unlock()
	idle.Reset(wait)
	for {
		fired := false
		select {
		case <-c.done:
			return false
		case <-c.readWake:
		case <-idle.C:
			fired = true
		}
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return false
		case c.reading == rdLoop:
			c.mu.Unlock()
			idle.Stop()
			return true
		case fired && c.reading == rdIdle && c.lends == seen:
			c.reading = rdLoop
			c.mu.Unlock()
			return true
		}
		if fired {
			seen = c.lends
			idle.Reset(c.idleReclaim)
		}
		c.mu.Unlock()
	}
}

// hasSubs reports whether any subscription is live.
func (c *Conn) hasSubs() bool {
	c.subsMu.RLock()
	defer c.subsMu.RUnlock()
	return len(c.subs) > 0
}

// handleReply routes the reply in c.scratch, read by the holder of the read
// role: an event to the subscriptions, a command reply to the oldest
// pending command. When that command is own (the holder's own command, see
// readOwn), it is returned without waking anyone; otherwise its waiter is
// woken. ok is false when the connection has ended.
//
// When the reader goroutine delivers the reply of a command that was alone
// in flight for its whole round trip and nobody subscribes, it leaves the
// read role idle before waking the caller: a caller whose next command
// finds it idle reads that command's reply itself.
func (c *Conn) handleReply(own *request) (r *request, ok bool) {
	if code := c.scratch.offs[0].code; code >= 600 && code <= 699 {
		c.dispatch(&c.scratch)
		c.scratch.release()
		return nil, true
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false
	}
	if len(c.pending) == 0 {
		c.mu.Unlock()
		first := c.scratch.reply().Lines[0]
		c.shutdown(fmt.Errorf("%w: reply with no command outstanding: %q", ErrProtocol, trimForError(first.String())))
		return nil, false
	}
	r = c.pending[0]
	// Pop without giving up the slice's front (c.pending[1:] would make
	// the next append allocate): commands in flight are few.
	n := copy(c.pending, c.pending[1:])
	c.pending[n] = nil
	c.pending = c.pending[:n]
	// A command that was alone in flight from its write to its reply is
	// a sequential caller's: leave the role idle for its next command.
	// (Under concurrent callers going idle would only add hand-overs.)
	last := own == nil && r.alone && r.mark == c.submits && n == 0 && len(c.queue) == 0 && c.leftover == nil
	c.mu.Unlock()
	switch {
	case r.async || !r.state.CompareAndSwap(stWritten, stReplied):
		if r.late != nil {
			r.reply = c.scratch.reply()
			r.late(r.reply)
		} else if !r.async {
			c.log.Debug("control: dropped reply of cancelled command", "command", r.cmd, "code", c.scratch.offs[len(c.scratch.offs)-1].code)
		}
	case r.pooled && len(c.scratch.b) < bigReply:
		// Hand the buffer over instead of copying the reply.
		c.scratch, r.rb = r.rb, c.scratch
		r.rep.Lines = r.rb.view()
		r.reply = &r.rep
	case r.pooled:
		// A big reply is handed out as is (no copy) and owned.
		r.reply, r.ownsReply = c.scratch.reply(), true
	default:
		r.reply = c.scratch.reply()
	}
	c.scratch.release()
	if last && !c.hasSubs() {
		// Done with rd and scratch: the role may go idle, before the
		// waiter wakes, so that its next command finds it idle.
		c.mu.Lock()
		if !c.closed && c.reading == rdLoop && len(c.pending) == 0 && len(c.queue) == 0 && c.leftover == nil {
			c.reading = rdIdle
		}
		c.mu.Unlock()
	}
	if r != own {
		r.finish()
	}
	return r, true
}

// readOwn reads the reply of r, the only command in flight, on the calling
// goroutine, which holds the read role (submitReading gave it): tor's reply
// wakes this goroutine directly instead of the reader goroutine, which
// would then have to wake it. Events that arrive first are dispatched as the
// reader goroutine would. The role goes back to the reader goroutine
// (woken) when other commands are in flight or subscriptions want events,
// and stays idle otherwise, for the next caller.
//
// The caller parses only a reply that is complete in the read buffer, so it
// never stops in the middle of one: it blocks only waiting for bytes, and a
// read deadline set when ctx ends wakes it from that. A reply that does not
// fit in the buffer, an ended ctx and a broken connection hand over to the
// reader goroutine's ways.
func (c *Conn) readOwn(ctx context.Context, r *request) (*Reply, error) {
	if ctx.Done() != nil {
		r.conn = c
		if r.interrupt == nil {
			r.interrupted = make(chan struct{}, 1)
			r.interrupt = func() {
				r.conn.nc.SetReadDeadline(aLongTimeAgo)
				r.interrupted <- struct{}{}
			}
		}
		r.stop = context.AfterFunc(ctx, r.interrupt)
	}
	for {
		complete, err := c.bufferReply()
		if err == nil && complete {
			if err = c.rd.readInto(&c.scratch); err != nil {
				c.disarm(r)
				c.shutdown(err) // r was pending: shutdown failed it
				return r.wait(ctx)
			}
			got, ok := c.handleReply(r)
			if !ok {
				c.disarm(r)
				return r.wait(ctx) // the connection ended and failed r
			}
			if got != r {
				continue // an event
			}
			c.disarm(r)
			c.releaseReadRole()
			return r.result()
		}
		c.disarm(r)
		if err == nil || ctx.Err() != nil {
			// The reply does not fit in the buffer, or ctx ended: the
			// reader goroutine reads it (and drops it if r is abandoned).
			c.handReadRole()
			if err != nil && r.state.CompareAndSwap(stWritten, stAbandoned) {
				return nil, ctx.Err()
			}
			return r.wait(ctx)
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed {
			if err == io.EOF && c.rd.br.Buffered() > 0 {
				err = io.ErrUnexpectedEOF
			}
			c.shutdown(err)
		}
		return r.wait(ctx) // shutdown failed r
	}
}

// disarm stops r's ctx watch; if it already fired, it waits for its read
// deadline to be set and clears it.
func (c *Conn) disarm(r *request) {
	if r.stop == nil {
		return
	}
	if !r.stop() {
		<-r.interrupted
		c.nc.SetReadDeadline(time.Time{})
	}
	r.stop, r.conn = nil, nil
}

// releaseReadRole ends a caller's hold on the read role after its reply:
// back to the reader goroutine if anything else needs reading, idle
// otherwise.
func (c *Conn) releaseReadRole() {
	subs := c.hasSubs()
	c.mu.Lock()
	if c.closed || c.reading != rdCaller {
		c.mu.Unlock()
		return
	}
	if subs || len(c.pending) > 0 || len(c.queue) > 0 || c.leftover != nil {
		c.reading = rdLoop
		c.mu.Unlock()
		c.wakeReader()
		return
	}
	c.reading = rdIdle
	c.mu.Unlock()
}

// handReadRole gives the read role from a caller to the reader goroutine.
func (c *Conn) handReadRole() {
	c.mu.Lock()
	c.reading = rdLoop
	c.mu.Unlock()
	c.wakeReader()
}

// bufferReply waits until the read buffer holds a complete reply (true), or
// is full without one (false: the reply is bigger than the buffer).
func (c *Conn) bufferReply() (bool, error) {
	br := c.rd.br
	for {
		n := br.Buffered()
		if n > 0 {
			b, _ := br.Peek(n)
			if replyComplete(b) {
				return true, nil
			}
			if n >= br.Size() {
				return false, nil
			}
		}
		if _, err := br.Peek(n + 1); err != nil {
			return false, err
		}
	}
}

// shutdown ends the connection with cause; only the first call has effect.
func (c *Conn) shutdown(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if cause == io.EOF {
		c.log.Debug("control: connection closed by tor")
	} else if !errors.Is(cause, net.ErrClosed) {
		c.log.Debug("control: connection ended", "err", cause)
	}
	c.closed = true
	c.cause = cause
	queue, pending := c.queue, c.pending
	c.queue, c.pending, c.leftover = nil, nil, nil
	c.mu.Unlock()
	c.nc.Close()
	err := c.closedErr()
	for _, list := range [][]*request{pending, queue} {
		for _, r := range list {
			r.err = err
			r.finish()
		}
	}
	close(c.done)
	c.subsMu.Lock()
	for _, s := range c.subs {
		close(s.ch)
	}
	c.subs, c.route = nil, nil
	c.subsMu.Unlock()
}

// Request sends one raw command line (without CRLF) and returns tor's
// reply. It is the way to use commands this package has no method for. A
// reply whose status is not 2xx is returned together with a *Error. The
// line must not contain CR, LF or NUL (the error matches
// ErrInvalidArgument); arguments inside it are sent as given, so quote and
// check user values with [QuoteCString] and [CheckToken].
func (c *Conn) Request(ctx context.Context, line string) (*Reply, error) {
	if err := checkLine(line); err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, newRequest(commandName(line), line, nil))
}

// RequestData sends a multi-line command: line (which should start with
// '+', as in "+LOADCONF") followed by data as a dot-stuffed data block.
// Lines of data may end in LF or CRLF; data must not contain NUL.
func (c *Conn) RequestData(ctx context.Context, line, data string) (*Reply, error) {
	if err := checkLine(line); err != nil {
		return nil, err
	}
	if err := checkValue("command data", data); err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, newRequest(commandName(line), line, &data))
}

// requestOK sends line and returns an error unless tor answered 2xx.
func (c *Conn) requestOK(ctx context.Context, line string) error {
	_, err := c.Request(ctx, line)
	return err
}
