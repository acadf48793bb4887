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
)

// Conn is a connection to tor's control port. All methods are safe for
// concurrent use: commands from any number of goroutines are pipelined
// (written without waiting for earlier replies, and coalesced into as few
// writes as possible) and their replies matched in order. Asynchronous
// events are routed to [Subscription]s.
//
// A Conn owns one reader and one writer goroutine; both end, and every
// pending call fails with an error matching net.ErrClosed, when [Conn.Close]
// is called or the connection ends for any other reason.
type Conn struct {
	nc   net.Conn
	log  *slog.Logger
	rd   *replyReader
	rand io.Reader
	opts options

	mu      sync.Mutex
	queue   []*request // accepted, not yet taken by the writer
	pending []*request // written, waiting for their reply, oldest first
	closed  bool
	cause   error
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	// Events. subsMu guards subs and the subscriptions' channels (the
	// reader sends under a read lock; Close closes under the write lock).
	subsMu sync.RWMutex
	subs   []*Subscription
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
		nc:   nc,
		rand: rand.Reader,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	for _, o := range opts {
		o(&c.opts)
	}
	c.log = c.opts.log
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.rd = newReplyReader(nc, c.opts.maxReplySize)
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

// LocalAddr and RemoteAddr return the addresses of the underlying
// connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the address of tor's end of the connection.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Request states.
const (
	stQueued    int32 = iota // waiting for the writer
	stWritten                // written, reply outstanding
	stCancelled              // cancelled before being written: never written
	stAbandoned              // cancelled after being written: reply to be dropped
	stReplied                // reply delivered
)

type request struct {
	cmd   string // keyword, for errors and logs
	line  string
	data  *string
	state atomic.Int32
	reply *Reply
	err   error
	done  chan struct{}
	// async requests have no waiter; late is called with their reply.
	async bool
	// late is called (on the reader goroutine; it must not block) with the
	// reply of a request whose caller gave up after it was written.
	late func(*Reply)
}

func newRequest(cmd, line string, data *string) *request {
	return &request{cmd: cmd, line: line, data: data, done: make(chan struct{})}
}

// commandName returns the keyword of a command line, for errors.
func commandName(line string) string {
	if i := strings.IndexByte(line, ' '); i >= 0 {
		line = line[:i]
	}
	return strings.ToUpper(strings.TrimPrefix(line, "+"))
}

func (c *Conn) closedErr() error { return &ClosedError{Cause: c.cause} }

func (c *Conn) enqueue(r *request) error {
	c.mu.Lock()
	if c.closed {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// roundTrip sends r and waits for its reply. A non-2xx reply is returned
// together with a *Error.
func (c *Conn) roundTrip(ctx context.Context, r *request) (*Reply, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.enqueue(r); err != nil {
		return nil, err
	}
	return r.wait(ctx)
}

// wait waits for the reply of an enqueued request.
func (r *request) wait(ctx context.Context) (*Reply, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(stQueued, stCancelled) ||
			r.state.CompareAndSwap(stWritten, stAbandoned) {
			return nil, ctx.Err()
		}
		<-r.done // the reply is being delivered right now
	}
	if r.err != nil {
		return nil, r.err
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
	if err := c.enqueue(r); err != nil {
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

// send enqueues r without waiting; its reply goes to r.late.
func (c *Conn) send(r *request) {
	r.async = true
	if err := c.enqueue(r); err != nil {
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
		// Let goroutines that are ready to run (typically callers just
		// woken by replies) queue their next commands, so that they go out
		// in this write rather than one write each.
		runtime.Gosched()
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return
			}
			batch, c.queue = c.queue, batch[:0]
			buf = buf[:0]
			for _, r := range batch {
				if r.state.CompareAndSwap(stQueued, stWritten) {
					c.pending = append(c.pending, r)
					buf = appendCommand(buf, r.line, r.data)
				}
			}
			c.mu.Unlock()
			clear(batch)
			if len(buf) == 0 {
				break
			}
			if _, err := c.nc.Write(buf); err != nil {
				c.shutdown(fmt.Errorf("write: %w", err))
				return
			}
			if cap(buf) > 1<<20 {
				buf = nil // don't keep a huge buffer after a big command
			}
		}
	}
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	for {
		reply, err := c.rd.ReadReply()
		if err != nil {
			c.shutdown(err)
			return
		}
		if code := reply.Lines[0].Code; code >= 600 && code <= 699 {
			c.dispatch(reply)
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		if len(c.pending) == 0 {
			c.mu.Unlock()
			c.shutdown(fmt.Errorf("%w: reply with no command outstanding: %q", ErrProtocol, trimForError(reply.Lines[0].String())))
			return
		}
		r := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.mu.Unlock()
		r.reply = reply
		switch {
		case r.async:
			if r.late != nil {
				r.late(reply)
			}
		case !r.state.CompareAndSwap(stWritten, stReplied):
			if r.late != nil {
				r.late(reply)
			} else {
				c.log.Debug("control: dropped reply of cancelled command", "command", r.cmd, "code", reply.Code())
			}
		}
		close(r.done)
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
	c.queue, c.pending = nil, nil
	c.mu.Unlock()
	c.nc.Close()
	err := c.closedErr()
	for _, list := range [][]*request{pending, queue} {
		for _, r := range list {
			r.err = err
			close(r.done)
		}
	}
	close(c.done)
	c.subsMu.Lock()
	for _, s := range c.subs {
		close(s.ch)
	}
	c.subs = nil
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
	if err := CheckValue("command data", data); err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, newRequest(commandName(line), line, &data))
}

// requestOK sends line and returns an error unless tor answered 2xx.
func (c *Conn) requestOK(ctx context.Context, line string) error {
	_, err := c.Request(ctx, line)
	return err
}
