package onion

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// Dialer dials through a tor SOCKS port. It implements the
// proxy.ContextDialer and proxy.Dialer interfaces of golang.org/x/net/proxy,
// so it plugs into anything that takes one.
//
// Host names, .onion or not, are always sent to tor for resolution; the
// Dialer never looks a name up locally (which would leak it to the local
// DNS resolver). Failure replies are typed: see SOCKSError and ReplyCode.
// Tor sends the onion-service codes 0xF0–0xF7 only when its SocksPort has
// the ExtendedErrors flag; otherwise such failures arrive as general
// failures (0x01) or TTL expired (0x06).
//
// Streams of Dialers with different Username/Password never share a
// circuit (tor's IsolateSOCKSAuth, on by default); use Isolated for a
// Dialer with fresh random credentials.
//
// A Dialer may be copied before first use and used from many goroutines.
type Dialer struct {
	// ProxyNetwork and ProxyAddress locate tor's SOCKS port: "tcp" and
	// "127.0.0.1:9050", or "unix" and a socket path. NewDialer fills them
	// in from tor's own notation.
	ProxyNetwork, ProxyAddress string

	// Username and Password, when Username is not empty, are sent with
	// SOCKS5 username/password authentication (RFC 1929; at most 255 bytes
	// each). Tor accepts any and uses them only to isolate streams.
	Username, Password string

	// Forward dials the SOCKS port (default: a net.Dialer). It may be any
	// x/net/proxy dialer that implements proxy.ContextDialer.
	Forward proxy.ContextDialer
}

var (
	_ proxy.ContextDialer = (*Dialer)(nil)
	_ proxy.Dialer        = (*Dialer)(nil)
)

// NewDialer returns a Dialer for tor's SOCKS port at addr, written as tor
// lists it in GETINFO net/listeners/socks: "127.0.0.1:9050",
// "[::1]:9050" or "unix:/path/to/socket". Quotes around addr are removed.
func NewDialer(addr string) *Dialer {
	addr = strings.Trim(addr, `"`)
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return &Dialer{ProxyNetwork: "unix", ProxyAddress: path}
	}
	return &Dialer{ProxyNetwork: "tcp", ProxyAddress: addr}
}

// Isolated returns a copy of d with new random credentials, so that its
// streams use circuits of their own.
func (d *Dialer) Isolated() *Dialer {
	c := *d
	var b [16]byte
	rand.Read(b[:])
	c.Username = "gotorcon-" + hex.EncodeToString(b[:])
	c.Password = "x"
	return &c
}

// Dial is DialContext with context.Background. Prefer DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address ("host:port", the port a number)
// through tor. network must be "tcp", "tcp4" or "tcp6" (tor carries TCP
// only; the suffix does not restrict anything, tor chooses). ctx bounds the
// whole dial: reaching the SOCKS port, the handshake and tor's work (for an
// onion service: fetching its descriptor, introduction and rendezvous).
//
// Errors are *net.OpError values wrapping a *SOCKSError for a failure
// reported by tor, the context's error, or a local or protocol error.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(addr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: network, Source: nil, Addr: addr, Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, opErr(nil, fmt.Errorf("network %q not supported through tor: use tcp", network))
	}
	dst, err := parseSOCKSAddr(address)
	if err != nil {
		return nil, opErr(nil, err)
	}
	c, _, err := d.do(ctx, cmdConnect, dst)
	if err != nil {
		return nil, opErr(dst, err)
	}
	return c, nil
}

// Resolve asks tor to resolve a host name (tor's SOCKS RESOLVE extension)
// and returns the address tor's exit got; nothing is looked up locally.
// Tor answers one address. It answers an IP literal itself, and refuses
// .onion names.
func (d *Dialer) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	dst, err := newSOCKSAddr(host, 0)
	if err != nil {
		return netip.Addr{}, &net.DNSError{Err: err.Error(), Name: host}
	}
	c, bound, err := d.do(ctx, cmdResolve, dst)
	if err != nil {
		return netip.Addr{}, &net.OpError{Op: "resolve", Net: "tcp", Addr: dst, Err: err}
	}
	c.Close()
	if !bound.ip.IsValid() {
		return netip.Addr{}, &net.OpError{Op: "resolve", Net: "tcp", Addr: dst,
			Err: fmt.Errorf("%w: RESOLVE answered with a host name, not an address", ErrSOCKSProtocol)}
	}
	return bound.ip, nil
}

// ResolvePTR asks tor for the host name of an IP address (tor's SOCKS
// RESOLVE_PTR extension, a reverse lookup done by an exit).
func (d *Dialer) ResolvePTR(ctx context.Context, ip netip.Addr) (string, error) {
	if !ip.IsValid() {
		return "", &net.DNSError{Err: "invalid IP address", Name: ip.String()}
	}
	dst := socksAddr{ip: ip.Unmap().WithZone("")}
	c, bound, err := d.do(ctx, cmdResolvePTR, dst)
	if err != nil {
		return "", &net.OpError{Op: "resolve_ptr", Net: "tcp", Addr: dst, Err: err}
	}
	c.Close()
	if bound.host == "" {
		return "", &net.OpError{Op: "resolve_ptr", Net: "tcp", Addr: dst,
			Err: fmt.Errorf("%w: RESOLVE_PTR answered with an address, not a host name", ErrSOCKSProtocol)}
	}
	return bound.host, nil
}

// do connects to the SOCKS port and runs one command. On success the
// connection is returned (for CONNECT, the stream).
func (d *Dialer) do(ctx context.Context, cmd byte, dst socksAddr) (net.Conn, socksAddr, error) {
	if d.ProxyAddress == "" {
		return nil, socksAddr{}, errors.New("onion: Dialer has no ProxyAddress (tor's SOCKS port)")
	}
	if len(d.Username) > maxCredLen || len(d.Password) > maxCredLen {
		return nil, socksAddr{}, fmt.Errorf("onion: SOCKS username and password must be at most %d bytes", maxCredLen)
	}
	if d.Username == "" && d.Password != "" {
		return nil, socksAddr{}, errors.New("onion: SOCKS password without username")
	}
	if err := ctx.Err(); err != nil {
		return nil, socksAddr{}, err
	}
	network := d.ProxyNetwork
	if network == "" {
		network = "tcp"
	}
	fwd := d.Forward
	if fwd == nil {
		fwd = &net.Dialer{}
	}
	c, err := fwd.DialContext(ctx, network, d.ProxyAddress)
	if err != nil {
		return nil, socksAddr{}, fmt.Errorf("onion: reach tor's SOCKS port: %w", err)
	}
	bound, err := socksHandshake(ctx, c, cmd, dst, d.Username, d.Password)
	if err != nil {
		c.Close()
		return nil, socksAddr{}, err
	}
	return c, bound, nil
}

// transport returns the *http.Transport of HTTPClient.
func (d *Dialer) transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// HTTPClient returns an *http.Client that makes every request through d.
// Its Transport (an *http.Transport, to clone and adjust if needed) never
// uses a proxy from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY are
// ignored: a proxy there would bypass tor), and never resolves host names
// locally: they go to tor as they are. Timeouts are sized for tor, where a
// first connection to an onion service takes seconds. Give the client a
// Timeout, or requests a context deadline, as needed; a dial is bounded by
// the request's context.
func (d *Dialer) HTTPClient() *http.Client {
	return &http.Client{Transport: d.transport()}
}
