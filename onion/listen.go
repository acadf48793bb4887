package onion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/control"
)

// Wait says how long Listen waits for the service's descriptor to be
// published before it returns.
type Wait int

const (
	// WaitPublished, the default, returns once every descriptor upload
	// tor started for the service has finished, at least one of them
	// successfully, and every descriptor tor built (there are two: for the
	// current and the next time period) has been uploaded. A client can
	// then fetch whichever descriptor it needs: after only the first
	// UPLOADED a client may get 0xF0 (descriptor not found) because it
	// looks for the other one.
	WaitPublished Wait = iota
	// WaitFirstUpload returns at the first successful upload.
	WaitFirstUpload
	// WaitNone returns as soon as tor has created the service; it is not
	// reachable yet.
	WaitNone
)

// DefaultPublishTimeout bounds the wait for publication when neither
// ListenConfig.PublishTimeout nor the context sets a shorter limit.
const DefaultPublishTimeout = 3 * time.Minute

// Errors of Listen.
var (
	// ErrPublish is matched by the *PublishError Listen returns when the
	// service could not be published (every upload failed, the wait timed
	// out, or the control connection ended).
	ErrPublish = errors.New("onion: publication failed")
	// ErrAllUploadsFailed is matched when every descriptor upload failed.
	ErrAllUploadsFailed = errors.New("onion: every descriptor upload failed")
	// ErrAnonymityMode is matched when ListenConfig.NonAnonymous does not
	// match tor's configuration: a single-hop (non-anonymous) service needs
	// a tor started with HiddenServiceSingleHopMode 1 and
	// HiddenServiceNonAnonymousMode 1, and such a tor can publish only
	// non-anonymous services.
	ErrAnonymityMode = errors.New("onion: NonAnonymous does not match tor's HiddenServiceNonAnonymousMode")
	// ErrAddressInUse is matched when the key given to Listen belongs to a
	// service this tor already runs.
	ErrAddressInUse = errors.New("onion: onion address already in use on this tor")
)

// Progress describes the publication of a service, for
// ListenConfig.Progress.
type Progress struct {
	// ServiceID is the onion address without ".onion".
	ServiceID string
	// Event is the HS_DESC event that changed the state.
	Event *control.HSDescEvent
	// Descriptors is the number of descriptors tor built (CREATED).
	Descriptors int
	// Uploads is the number of uploads tor started (one per descriptor and
	// HSDir); Uploaded and Failed count those that finished.
	Uploads, Uploaded, Failed int
}

// Pending returns the number of uploads that have not finished.
func (p Progress) Pending() int { return p.Uploads - p.Uploaded - p.Failed }

// PublishError reports a service that Listen could not publish; the
// service has been removed.
type PublishError struct {
	ServiceID string
	// Progress is the state reached.
	Progress Progress
	// Reasons are the REASON values of FAILED events.
	Reasons []string
	// Err is ErrAllUploadsFailed, the context's error, or the error that
	// ended the control connection.
	Err error
}

func (e *PublishError) Error() string {
	s := fmt.Sprintf("onion: publication of %s.onion failed: %v (uploads: %d started, %d uploaded, %d failed",
		e.ServiceID, e.Err, e.Progress.Uploads, e.Progress.Uploaded, e.Progress.Failed)
	if len(e.Reasons) > 0 {
		s += "; reasons: " + strings.Join(e.Reasons, ", ")
	}
	return s + ")"
}

// Unwrap returns Err and ErrPublish.
func (e *PublishError) Unwrap() []error { return []error{e.Err, ErrPublish} }

// ListenConfig configures an ephemeral onion service (ADD_ONION). The zero
// value publishes a service with a new key whose virtual port 80 leads to
// the Listener, and waits until it is published.
type ListenConfig struct {
	// Key is the service's identity; nil lets tor generate a new one
	// (returned by Listener.Key unless DiscardKey is set).
	Key *Key
	// DiscardKey asks tor not to return a key it generated (DiscardPK):
	// the service's address can then never be published again.
	DiscardKey bool

	// Ports are the virtual ports whose connections the Listener accepts
	// (default 80, unless Targets is set and Ports is empty).
	Ports []int
	// Targets are further virtual ports forwarded by tor to explicit
	// targets instead of the Listener: "PORT", "HOST:PORT", "[IPv6]:PORT"
	// or "unix:/path" (no spaces).
	Targets []control.OnionPort

	// LocalNetwork is the kind of socket tor forwards the Ports to: "tcp"
	// (default: a new port on 127.0.0.1) or "unix" (a socket in a new
	// directory of mode 0700, removed by Close; tor 0.2.9+ on unix-like
	// systems). Local programs can reach a TCP port directly, without
	// going through tor; a unix socket is private to the user.
	LocalNetwork string
	// LocalListener, if set, is used instead of a new local socket (a TCP
	// listener on a loopback or unspecified address, or a unix socket
	// listener). The Listener takes ownership and closes it.
	LocalListener net.Listener

	// Detach makes the service outlive the control connection and the
	// Listener: Close then leaves it published (delete it with
	// control.Conn.DelOnion). Use it with Targets.
	Detach bool
	// NonAnonymous publishes a single-hop service; tor must run with
	// HiddenServiceSingleHopMode 1 and HiddenServiceNonAnonymousMode 1
	// (see ErrAnonymityMode).
	NonAnonymous bool
	// MaxStreams limits the streams per rendezvous circuit (0: no limit;
	// at most 65535). With MaxStreamsCloseCircuit, a client that exceeds it
	// has its circuit closed instead of its stream refused.
	MaxStreams             int
	MaxStreamsCloseCircuit bool
	// ClientAuth lists the clients allowed to connect (v3 client
	// authorization); empty means anyone who knows the address.
	ClientAuth []ClientPublicKey
	// PoW is the proof-of-work defense: on by default where tor supports
	// it (tor 0.4.9+ for ephemeral services; see PoW). The other limits of
	// on-disk services (IntroDoS, IntroPoints, ExportCircuitID) have no
	// ADD_ONION argument in tor 0.4.9.
	PoW PoW
	// Logger receives notices such as a PoW fallback (slog.Default() when
	// nil).
	Logger *slog.Logger

	// Wait says when Listen returns (default WaitPublished).
	Wait Wait
	// PublishTimeout bounds the publication wait (DefaultPublishTimeout
	// when zero, no limit but the context's when negative).
	PublishTimeout time.Duration
	// Progress, if set, is called (from Listen's goroutine) with every
	// HS_DESC event about the service while Listen waits.
	Progress func(Progress)
}

// Listen publishes an ephemeral onion service through conn, an
// authenticated control connection, and returns a Listener for it.
//
// Unless Detach is set the service lives as long as conn: conn must stay
// open while the Listener is used (Listener.Close does not close conn),
// and if conn ends, Accept fails.
//
// Listen subscribes to HS_DESC events before it sends ADD_ONION, so no
// upload event can be missed, then waits as lc.Wait says. If ctx ends
// or publication fails, the service is removed and the error is a
// *PublishError (or ctx's error while ADD_ONION itself is pending).
func (lc *ListenConfig) Listen(ctx context.Context, conn *control.Conn) (_ *Listener, err error) {
	if conn == nil {
		return nil, errors.New("onion: Listen needs a control connection")
	}
	req, err := lc.request()
	if err != nil {
		return nil, err
	}
	ports := lc.Ports
	if len(ports) == 0 && len(lc.Targets) == 0 {
		ports = []int{80}
	}
	l := newListener(conn, ports, lc.Targets, lc.Detach)
	defer func() {
		if err != nil {
			l.shutdown(true)
		}
	}()

	if len(ports) > 0 {
		target, err := l.listenLocal(lc.LocalListener, lc.LocalNetwork)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			req.Ports = append(req.Ports, control.OnionPort{VirtPort: p, Target: target})
		}
	}
	req.Ports = append(req.Ports, lc.Targets...)

	var sub *control.Subscription
	if lc.Wait != WaitNone {
		// Before ADD_ONION: tor may build and upload descriptors before we
		// read its reply.
		sub, err = conn.Subscribe(ctx, "HS_DESC")
		if err != nil {
			return nil, fmt.Errorf("onion: subscribe to HS_DESC: %w", err)
		}
		defer sub.Close()
	}

	rep, err := conn.AddOnion(ctx, req)
	if err != nil && req.PoW != nil && control.IsUnrecognizedKeyword(err, "PoWDefensesEnabled") {
		if lc.PoW.Mode == PoWOn {
			return nil, fmt.Errorf("%w (tor 0.4.9 or later needed for ephemeral services): %w", ErrPoWUnsupported, err)
		}
		logger(lc.Logger).Info("onion: this tor does not take PoW for ephemeral services (tor 0.4.9+ does); publishing without the proof-of-work defense")
		req.PoW = nil
		rep, err = conn.AddOnion(ctx, req)
	}
	if err != nil {
		return nil, addOnionError(err, lc.NonAnonymous)
	}
	l.pow = req.PoW != nil
	l.id = rep.ServiceID
	l.created = true
	l.remove = func(ctx context.Context) error {
		if err := conn.DelOnion(ctx, l.id); err != nil {
			return fmt.Errorf("DEL_ONION: %w", err)
		}
		return nil
	}
	l.startWatch()
	if _, perr := ParseAddress(rep.ServiceID); perr != nil {
		return nil, fmt.Errorf("onion: tor returned an invalid ServiceID: %w", perr)
	}
	switch {
	case lc.Key != nil:
		if rep.ServiceID != lc.Key.ServiceID() {
			return nil, fmt.Errorf("onion: tor created %s for the key of %s", rep.ServiceID, lc.Key.ServiceID())
		}
		l.key = lc.Key
	case rep.KeyBlob != "":
		k, kerr := ParseKeyBlob(rep.KeyType + ":" + rep.KeyBlob)
		if kerr != nil {
			return nil, fmt.Errorf("onion: key in ADD_ONION reply: %w", kerr)
		}
		if k.ServiceID() != rep.ServiceID {
			return nil, fmt.Errorf("onion: the key tor returned is for %s, not %s", k.ServiceID(), rep.ServiceID)
		}
		l.key = k
	}

	if sub != nil {
		if err := waitWithTimeout(ctx, conn, sub, l.id, lc.Wait, lc.PublishTimeout, lc.Progress); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// newListener returns a Listener for the given ports, not yet created.
func newListener(conn *control.Conn, ports []int, targets []control.OnionPort, detach bool) *Listener {
	l := &Listener{
		conn:    conn,
		detach:  detach,
		closed:  make(chan struct{}),
		watched: make(chan struct{}),
	}
	l.ports = append(l.ports, ports...)
	for _, t := range targets {
		l.ports = append(l.ports, t.VirtPort)
	}
	return l
}

// startWatch starts the watch of the control connection, once the service
// exists; a detached service does not depend on the connection.
func (l *Listener) startWatch() {
	l.watching = true
	if l.detach {
		close(l.watched)
		return
	}
	go l.watch()
}

// waitWithTimeout is waitPublished bounded by timeout (DefaultPublishTimeout
// when zero, only ctx when negative).
func waitWithTimeout(ctx context.Context, conn *control.Conn, sub *control.Subscription, id string, mode Wait, timeout time.Duration, progress func(Progress)) error {
	if timeout == 0 {
		timeout = DefaultPublishTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return waitPublished(ctx, conn, sub, id, mode, progress)
}

// request builds the ADD_ONION request from lc, without the ports.
func (lc *ListenConfig) request() (*control.AddOnionRequest, error) {
	req := &control.AddOnionRequest{}
	if lc.Key != nil {
		req.KeyType, req.KeyBlob = KeyType, lc.Key.blobData()
	} else {
		req.KeyType, req.KeyBlob = control.KeyTypeNew, control.KeyBlobED25519V3
	}
	// An imported key is never echoed, so DiscardPK only matters for NEW;
	// tor accepts it either way.
	if lc.DiscardKey {
		req.Flags = append(req.Flags, control.FlagDiscardPK)
	}
	if lc.Detach {
		req.Flags = append(req.Flags, control.FlagDetach)
	}
	if lc.NonAnonymous {
		req.Flags = append(req.Flags, control.FlagNonAnonymous)
	}
	if err := checkCommon(lc.Ports, lc.Targets, lc.MaxStreams, lc.Wait, lc.LocalNetwork); err != nil {
		return nil, err
	}
	if err := lc.PoW.check(); err != nil {
		return nil, err
	}
	req.PoW = lc.PoW.request()
	req.MaxStreams = lc.MaxStreams
	if lc.MaxStreamsCloseCircuit {
		req.Flags = append(req.Flags, control.FlagMaxStreamsCloseCircuit)
	}
	if len(lc.ClientAuth) > 0 {
		req.Flags = append(req.Flags, control.FlagV3Auth)
		for _, k := range lc.ClientAuth {
			req.ClientAuthV3 = append(req.ClientAuthV3, k.String())
		}
	}
	return req, nil
}

// checkCommon checks the settings ListenConfig and DirConfig share.
func checkCommon(ports []int, targets []control.OnionPort, maxStreams int, wait Wait, localNetwork string) error {
	if maxStreams < 0 || maxStreams > 65535 {
		return fmt.Errorf("onion: MaxStreams %d out of range 0-65535", maxStreams)
	}
	seen := map[int]bool{}
	check := func(p int) error {
		if p < 1 || p > 65535 {
			return fmt.Errorf("onion: virtual port %d out of range 1-65535", p)
		}
		if seen[p] {
			return fmt.Errorf("onion: virtual port %d given twice", p)
		}
		seen[p] = true
		return nil
	}
	for _, p := range ports {
		if err := check(p); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if err := check(t.VirtPort); err != nil {
			return err
		}
		if t.Target == "" {
			return fmt.Errorf("onion: virtual port %d: Targets need a target (use Ports for the Listener's own)", t.VirtPort)
		}
		if err := control.CheckToken("target", t.Target); err != nil {
			return fmt.Errorf("onion: virtual port %d: %w", t.VirtPort, err)
		}
	}
	switch wait {
	case WaitPublished, WaitFirstUpload, WaitNone:
	default:
		return fmt.Errorf("onion: unknown Wait %d", wait)
	}
	switch localNetwork {
	case "", "tcp", "unix":
	default:
		return fmt.Errorf("onion: LocalNetwork %q: want \"tcp\" or \"unix\"", localNetwork)
	}
	return nil
}

// listenLocal sets up the local socket (ln, or a new one on network) and
// returns its target for tor.
func (l *Listener) listenLocal(ln net.Listener, network string) (string, error) {
	if ln == nil {
		var err error
		if network == "unix" {
			dir, derr := os.MkdirTemp("", "gotorcon-onion-")
			if derr != nil {
				return "", derr
			}
			l.unixDir = dir
			ln, err = net.Listen("unix", filepath.Join(dir, "s"))
		} else {
			ln, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			return "", fmt.Errorf("onion: local listener: %w", err)
		}
	}
	l.ln = ln
	return targetOf(ln.Addr())
}

// targetOf returns the ADD_ONION target for a local listener's address.
func targetOf(a net.Addr) (string, error) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip := a.IP
		if ip == nil || ip.IsUnspecified() {
			// A listener on all addresses (Go's "0.0.0.0" or ":0" is dual
			// stack and reports [::]) is reachable on 127.0.0.1.
			ip = net.IPv4(127, 0, 0, 1)
		}
		return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port)), nil
	case *net.UnixAddr:
		if err := control.CheckToken("unix socket path", a.Name); err != nil {
			return "", fmt.Errorf("onion: tor cannot take this unix socket path: %w", err)
		}
		return "unix:" + a.Name, nil
	}
	return "", fmt.Errorf("onion: unsupported local listener address %s/%s", a.Network(), a)
}

func addOnionError(err error, nonAnonymous bool) error {
	var ce *control.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("onion: ADD_ONION: %w", err)
	}
	text := strings.ToLower(ce.Text)
	switch {
	case strings.Contains(text, "non-anonymous hidden service mode"):
		return fmt.Errorf("%w: this tor runs single-hop (non-anonymous) onion services only; set NonAnonymous: %w", ErrAnonymityMode, err)
	case strings.Contains(text, "anonymous hidden service mode"):
		return fmt.Errorf("%w: NonAnonymous needs tor started with HiddenServiceSingleHopMode 1 and HiddenServiceNonAnonymousMode 1: %w", ErrAnonymityMode, err)
	case strings.Contains(text, "collision"):
		return fmt.Errorf("%w: %w", ErrAddressInUse, err)
	}
	return fmt.Errorf("onion: ADD_ONION: %w", err)
}

// pubState follows the HS_DESC events of one service.
type pubState struct {
	id      string
	descs   map[string]bool // blinded key of each CREATED descriptor → an UPLOAD was seen
	pending map[string]int  // HSDir fingerprint → uploads not finished
	p       Progress
	reasons []string
}

// handle applies an event and reports whether it concerned the service.
func (s *pubState) handle(ev *control.HSDescEvent) bool {
	fp := ev.HSDirFingerprint()
	ours := ev.Address == s.id
	if !ours && ev.Address == "UNKNOWN" && (ev.Action == "UPLOADED" || ev.Action == "FAILED") {
		// Old tors left the address out; match by HSDir as stem does.
		ours = s.pending[fp] > 0
	}
	if !ours {
		return false
	}
	switch ev.Action {
	case "CREATED":
		if _, ok := s.descs[ev.DescriptorID]; !ok {
			s.descs[ev.DescriptorID] = false
		}
		s.p.Descriptors = len(s.descs)
	case "UPLOAD":
		s.p.Uploads++
		s.pending[fp]++
		if ev.DescriptorID != "" {
			s.descs[ev.DescriptorID] = true
			s.p.Descriptors = len(s.descs)
		}
	case "UPLOADED", "FAILED":
		if s.pending[fp] == 0 {
			return false // not an upload we saw start
		}
		s.pending[fp]--
		if ev.Action == "UPLOADED" {
			s.p.Uploaded++
		} else {
			s.p.Failed++
			if ev.Reason != "" && !slices.Contains(s.reasons, ev.Reason) {
				s.reasons = append(s.reasons, ev.Reason)
			}
		}
	default:
		return false
	}
	return true
}

// settled reports whether every descriptor built has been uploaded and
// every upload started has finished.
func (s *pubState) settled() bool {
	if s.p.Uploads == 0 || s.p.Pending() > 0 {
		return false
	}
	for _, uploaded := range s.descs {
		if !uploaded {
			return false
		}
	}
	return true
}

// result says whether the wait is over, and with which error.
func (s *pubState) result(mode Wait) (done bool, err error) {
	if mode == WaitFirstUpload && s.p.Uploaded > 0 {
		return true, nil
	}
	if !s.settled() {
		return false, nil
	}
	if s.p.Uploaded == 0 {
		return true, ErrAllUploadsFailed
	}
	return true, nil
}

func waitPublished(ctx context.Context, conn *control.Conn, sub *control.Subscription, id string, mode Wait, progress func(Progress)) error {
	s := &pubState{id: id, descs: map[string]bool{}, pending: map[string]int{}}
	s.p.ServiceID = id
	fail := func(err error) error {
		return &PublishError{ServiceID: id, Progress: s.p, Reasons: s.reasons, Err: err}
	}
	for {
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case raw, ok := <-sub.Events():
			if !ok {
				return fail(fmt.Errorf("%w: the control connection ended (%v)", net.ErrClosed, conn.Err()))
			}
			p, _ := raw.Parsed()
			ev, ok := p.(*control.HSDescEvent)
			if !ok || !s.handle(ev) {
				continue
			}
			if progress != nil {
				p := s.p
				p.Event = ev
				progress(p)
			}
			if done, err := s.result(mode); done {
				if err != nil {
					return fail(err)
				}
				return nil
			}
		}
	}
}

// Listener is a published onion service whose connections arrive through
// Accept. It implements net.Listener.
type Listener struct {
	conn    *control.Conn
	id      string
	key     *Key
	ports   []int
	detach  bool
	created bool // ADD_ONION succeeded
	pow     bool // the proof-of-work defense was asked of tor

	exportCircuitID bool // connections start with a PROXY header

	ln      net.Listener // nil when every port has an explicit target
	unixDir string

	remove  func(context.Context) error // removes the service from tor
	release func()                      // run once closed, if set

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	watched   chan struct{} // closed when watch has returned
	watching  bool          // startWatch was called (by Listen, before any shutdown)
	mu        sync.Mutex
	lost      error // why the service went away without Close
}

var _ net.Listener = (*Listener)(nil)

// Addr is the address of an onion service: its host name and a port. It
// implements net.Addr with the network "onion".
type Addr struct {
	ServiceID string
	Port      int
}

// Network returns "onion".
func (a *Addr) Network() string { return "onion" }

// String returns "<ServiceID>.onion:<Port>".
func (a *Addr) String() string {
	return net.JoinHostPort(a.ServiceID+".onion", strconv.Itoa(a.Port))
}

// Addr returns the onion address and the first virtual port, as
// "xxx.onion:80".
func (l *Listener) Addr() net.Addr {
	return &Addr{ServiceID: l.id, Port: l.ports[0]}
}

// ServiceID returns the onion address without ".onion".
func (l *Listener) ServiceID() string { return l.id }

// Hostname returns the onion host name, "<ServiceID>.onion".
func (l *Listener) Hostname() string { return l.id + ".onion" }

// Ports returns the virtual ports of the service: the Listener's own,
// then those with explicit targets.
func (l *Listener) Ports() []int { return slices.Clone(l.ports) }

// PoW reports whether the service was published with the proof-of-work
// defense on (false after a fallback on a tor without it).
func (l *Listener) PoW() bool { return l.pow }

// Key returns the service's key: the one given to Listen, or the one tor
// generated (nil with DiscardKey). Keep it to publish the same address
// again.
func (l *Listener) Key() *Key { return l.key }

// LocalAddr returns the address of the local socket tor forwards
// connections to (nil when every port has an explicit target).
func (l *Listener) LocalAddr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Accept waits for and returns the next connection to the service. The
// connection is the local end of tor's forwarded stream: its RemoteAddr
// is tor's side of the local socket, not the client (onion services never
// learn who the client is). For an on-disk service with ExportCircuitID
// the connection is a *CircuitConn, which tells the client's rendezvous
// circuit. Tor 0.4.9 gives ephemeral services no such thing: ADD_ONION has
// no ExportCircuitID, and tor sends no STREAM event for the streams it
// forwards to a service.
//
// After Close, Accept returns an error matching net.ErrClosed; so it does
// when the control connection that owned the service ended.
func (l *Listener) Accept() (net.Conn, error) {
	if l.ln == nil {
		<-l.closed
		return nil, l.acceptErr(net.ErrClosed)
	}
	c, err := l.ln.Accept()
	if err != nil {
		select {
		case <-l.closed:
			return nil, l.acceptErr(net.ErrClosed)
		default:
		}
		return nil, l.acceptErr(err)
	}
	if l.exportCircuitID {
		return newCircuitConn(c), nil
	}
	return c, nil
}

func (l *Listener) acceptErr(err error) error {
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	if lost != nil {
		err = lost
	}
	return &net.OpError{Op: "accept", Net: "onion", Addr: l.Addr(), Err: err}
}

// watch closes the listener when the control connection that owns the
// (non-detached) service ends: tor has removed the service.
func (l *Listener) watch() {
	defer close(l.watched)
	select {
	case <-l.closed:
	case <-l.conn.Done():
		l.mu.Lock()
		l.lost = fmt.Errorf("%w: the control connection owning the onion service ended (%v)", net.ErrClosed, l.conn.Err())
		l.mu.Unlock()
		l.shutdown(false)
	}
}

// Close removes the service from tor (DEL_ONION; not for a detached
// service), closes the local socket and unblocks Accept. It does not
// close the control connection. Calling it again returns the first
// result.
func (l *Listener) Close() error {
	l.shutdown(!l.detach)
	<-l.watched
	return l.closeErr
}

// shutdown closes the listener once; del asks for DEL_ONION.
func (l *Listener) shutdown(del bool) {
	l.closeOnce.Do(func() {
		close(l.closed)
		var errs []error
		if l.ln != nil {
			if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if del && l.created && l.remove != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := l.remove(ctx)
			cancel()
			// A closed connection took its ephemeral services with it.
			if err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("onion: remove %s.onion: %w", l.id, err))
			}
		}
		if l.unixDir != "" {
			if err := os.RemoveAll(l.unixDir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
		if l.release != nil {
			l.release()
		}
		if !l.watching {
			// Listen failed before the watch started.
			close(l.watched)
		}
	})
}
