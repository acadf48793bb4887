package onion

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// ReplyCode is a SOCKS5 reply code (RFC 1928 §6), including the codes tor
// adds for onion services when its SocksPort has the ExtendedErrors flag
// (tor's socks-extensions.txt §3). A ReplyCode is also an error, so
//
//	errors.Is(err, onion.ReplyOnionDescNotFound)
//
// tells why a dial failed; ErrOnionService matches all the onion-service
// codes at once.
type ReplyCode byte

// SOCKS5 reply codes.
const (
	ReplySucceeded               ReplyCode = 0x00
	ReplyGeneralFailure          ReplyCode = 0x01
	ReplyNotAllowed              ReplyCode = 0x02 // connection not allowed by ruleset (tor: exit policy)
	ReplyNetworkUnreachable      ReplyCode = 0x03
	ReplyHostUnreachable         ReplyCode = 0x04 // tor: also a failed RESOLVE, and an onion descriptor it may not fetch again yet (below)
	ReplyConnectionRefused       ReplyCode = 0x05
	ReplyTTLExpired              ReplyCode = 0x06 // tor: the stream timed out (SocksTimeout), also at an onion service that no longer answers
	ReplyCommandNotSupported     ReplyCode = 0x07
	ReplyAddressTypeNotSupported ReplyCode = 0x08

	// ReplyOnionDescNotFound: tor could not find the service's descriptor
	// (the service is down, not published yet, or the address is wrong).
	ReplyOnionDescNotFound ReplyCode = 0xF0
	// ReplyOnionDescInvalid: the descriptor could not be parsed or verified.
	ReplyOnionDescInvalid ReplyCode = 0xF1
	// ReplyOnionIntroFailed: every introduction point failed; the service
	// is likely gone or has a new descriptor.
	ReplyOnionIntroFailed ReplyCode = 0xF2
	// ReplyOnionRendFailed: the rendezvous with the service failed.
	ReplyOnionRendFailed ReplyCode = 0xF3
	// ReplyOnionMissingClientAuth: the service requires client
	// authorization and tor has no key for it. Tor 0.4.9 sends it (or
	// ReplyOnionWrongClientAuth) only on the dial that fetched the
	// descriptor; a dial within the next 15 minutes gets
	// ReplyHostUnreachable, because tor does not ask the same HSDir again
	// (add the key with AddClientAuth instead of retrying).
	ReplyOnionMissingClientAuth ReplyCode = 0xF4
	// ReplyOnionWrongClientAuth: tor has a client key for the service but
	// it cannot decrypt the descriptor (access revoked or wrong key).
	ReplyOnionWrongClientAuth ReplyCode = 0xF5
	// ReplyOnionBadAddress: the .onion address is invalid (checksum,
	// version, key or encoding).
	ReplyOnionBadAddress ReplyCode = 0xF6
	// ReplyOnionIntroTimedOut: every introduction attempt timed out.
	ReplyOnionIntroTimedOut ReplyCode = 0xF7
)

var replyText = map[ReplyCode]string{
	ReplySucceeded:               "succeeded",
	ReplyGeneralFailure:          "general SOCKS server failure",
	ReplyNotAllowed:              "connection not allowed by ruleset",
	ReplyNetworkUnreachable:      "network unreachable",
	ReplyHostUnreachable:         "host unreachable",
	ReplyConnectionRefused:       "connection refused",
	ReplyTTLExpired:              "TTL expired",
	ReplyCommandNotSupported:     "command not supported",
	ReplyAddressTypeNotSupported: "address type not supported",
	ReplyOnionDescNotFound:       "onion service descriptor can not be found",
	ReplyOnionDescInvalid:        "onion service descriptor is invalid",
	ReplyOnionIntroFailed:        "onion service introduction failed",
	ReplyOnionRendFailed:         "onion service rendezvous failed",
	ReplyOnionMissingClientAuth:  "onion service missing client authorization",
	ReplyOnionWrongClientAuth:    "onion service wrong client authorization",
	ReplyOnionBadAddress:         "onion service invalid address",
	ReplyOnionIntroTimedOut:      "onion service introduction timed out",
}

// String returns the meaning of the code and its hex value.
func (c ReplyCode) String() string {
	if t, ok := replyText[c]; ok {
		return fmt.Sprintf("%s (0x%02X)", t, byte(c))
	}
	return fmt.Sprintf("unknown SOCKS reply 0x%02X", byte(c))
}

// Error makes a ReplyCode usable as a target of errors.Is.
func (c ReplyCode) Error() string { return "socks: " + c.String() }

// IsOnionService reports whether c is one of tor's onion-service codes
// (0xF0–0xF7).
func (c ReplyCode) IsOnionService() bool { return c >= 0xF0 && c <= 0xF7 }

var (
	// ErrOnionService is matched by every *SOCKSError whose code is one of
	// tor's onion-service errors (0xF0–0xF7).
	ErrOnionService = errors.New("socks: onion service error")
	// ErrSOCKSProtocol is matched by errors caused by a SOCKS server that
	// does not follow the protocol (or is not a SOCKS server at all).
	ErrSOCKSProtocol = errors.New("socks: protocol error")
	// ErrSOCKSAuth is matched when the SOCKS server refuses the offered
	// authentication (no acceptable method, or a wrong username or
	// password).
	ErrSOCKSAuth = errors.New("socks: authentication refused")
)

// SOCKSError is a failure reply from the SOCKS server: tor could not make
// the connection or answer the query. Dial errors are *net.OpError values
// wrapping it, so use errors.As or errors.Is:
//
//	var se *onion.SOCKSError
//	if errors.As(err, &se) && se.Code == onion.ReplyOnionMissingClientAuth { ... }
//	if errors.Is(err, onion.ErrOnionService) { ... }
type SOCKSError struct {
	// Cmd is the SOCKS command: "connect", "resolve" or "resolve_ptr".
	Cmd string
	// Addr is the target of the command.
	Addr string
	// Code is the reply code.
	Code ReplyCode
}

func (e *SOCKSError) Error() string {
	return fmt.Sprintf("socks %s %s: %s", e.Cmd, e.Addr, e.Code)
}

// Is matches the ReplyCode of the error and, for codes 0xF0–0xF7,
// ErrOnionService.
func (e *SOCKSError) Is(target error) bool {
	switch t := target.(type) {
	case ReplyCode:
		return t == e.Code
	}
	return target == ErrOnionService && e.Code.IsOnionService()
}

// Timeout reports whether tor gave up on time: TTL expired (0x06, tor's
// code for a stream that timed out) or an introduction timeout (0xF7).
func (e *SOCKSError) Timeout() bool {
	return e.Code == ReplyTTLExpired || e.Code == ReplyOnionIntroTimedOut
}

// Temporary reports whether trying again may succeed: timeouts, and the
// onion-service failures that happen while a service is being published
// or moves (descriptor not found, introduction or rendezvous failed).
func (e *SOCKSError) Temporary() bool {
	switch e.Code {
	case ReplyGeneralFailure, ReplyTTLExpired, ReplyOnionDescNotFound, ReplyOnionIntroFailed,
		ReplyOnionRendFailed, ReplyOnionIntroTimedOut:
		return true
	}
	return false
}

// SOCKS5 wire constants.
const (
	socksVersion  = 0x05
	authNone      = 0x00
	authPassword  = 0x02
	authNoAccept  = 0xFF
	passwordVer   = 0x01
	cmdConnect    = 0x01
	cmdResolve    = 0xF0 // tor extension
	cmdResolvePTR = 0xF1 // tor extension
	atypIPv4      = 0x01
	atypDomain    = 0x03
	atypIPv6      = 0x04
	maxDomainLen  = 255
	maxCredLen    = 255
)

var cmdNames = map[byte]string{cmdConnect: "connect", cmdResolve: "resolve", cmdResolvePTR: "resolve_ptr"}

// socksAddr is a SOCKS destination: a host name (never resolved locally) or
// an IP address, and a port.
type socksAddr struct {
	host string
	ip   netip.Addr
	port uint16
}

func (a socksAddr) Network() string { return "tcp" }

func (a socksAddr) String() string {
	if a.ip.IsValid() {
		return netip.AddrPortFrom(a.ip, a.port).String()
	}
	return net.JoinHostPort(a.host, strconv.Itoa(int(a.port)))
}

// parseSOCKSAddr splits "host:port". An IP literal is sent as an address,
// anything else as a host name for tor to resolve (tor refuses names that
// look wrong, with a SOCKS error).
func parseSOCKSAddr(address string) (socksAddr, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return socksAddr{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return socksAddr{}, fmt.Errorf("bad port %q: want a number from 0 to 65535", portStr)
	}
	return newSOCKSAddr(host, uint16(port))
}

func newSOCKSAddr(host string, port uint16) (socksAddr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return socksAddr{}, fmt.Errorf("IPv6 zone in %q cannot be sent through SOCKS", host)
		}
		return socksAddr{ip: ip.Unmap(), port: port}, nil
	}
	if host == "" || len(host) > maxDomainLen {
		return socksAddr{}, fmt.Errorf("host name must be 1 to %d bytes, got %d", maxDomainLen, len(host))
	}
	for i := 0; i < len(host); i++ {
		if host[i] < 0x21 || host[i] == 0x7f {
			return socksAddr{}, fmt.Errorf("host name %q contains a space or control character", host)
		}
	}
	return socksAddr{host: host, port: port}, nil
}

func (a socksAddr) appendTo(b []byte) []byte {
	switch {
	case a.ip.Is4():
		b = append(b, atypIPv4)
		b = append(b, a.ip.AsSlice()...)
	case a.ip.Is6():
		b = append(b, atypIPv6)
		b = append(b, a.ip.AsSlice()...)
	default:
		b = append(b, atypDomain, byte(len(a.host)))
		b = append(b, a.host...)
	}
	return binary.BigEndian.AppendUint16(b, a.port)
}

// socksHandshake runs a SOCKS5 exchange on c: method negotiation,
// username/password authentication when user is not empty, then one
// request. It returns the bound address of the reply (for RESOLVE, the
// answer). It honours ctx by setting deadlines on c; on return c has no
// deadline unless the exchange failed.
func socksHandshake(ctx context.Context, c net.Conn, cmd byte, dst socksAddr, user, pass string) (_ socksAddr, err error) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() && err == nil {
				err = ctx.Err()
			}
		}()
	}
	defer func() {
		// Report the context's error rather than the i/o timeout it
		// caused (the conn deadline can expire a moment before ctx).
		if err == nil {
			return
		}
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		} else if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) && errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded
		}
	}()
	defer func() {
		if err == nil {
			c.SetDeadline(time.Time{})
		}
	}()

	// Greeting. With credentials offer only username/password: a server
	// that picked "no authentication" would silently lose the stream
	// isolation the credentials exist for.
	method := byte(authNone)
	if user != "" {
		method = authPassword
	}
	var hdr [4]byte
	if _, err := c.Write([]byte{socksVersion, 1, method}); err != nil {
		return socksAddr{}, err
	}
	if _, err := io.ReadFull(c, hdr[:2]); err != nil {
		return socksAddr{}, readErr(err, "method selection")
	}
	if hdr[0] != socksVersion {
		return socksAddr{}, fmt.Errorf("%w: version %d in method selection, want 5 (is this a SOCKS5 port?)", ErrSOCKSProtocol, hdr[0])
	}
	if hdr[1] == authNoAccept {
		return socksAddr{}, fmt.Errorf("%w: no acceptable authentication method", ErrSOCKSAuth)
	}
	if hdr[1] != method {
		return socksAddr{}, fmt.Errorf("%w: server chose authentication method 0x%02X, which was not offered", ErrSOCKSProtocol, hdr[1])
	}
	buf := make([]byte, 0, 3+2*maxCredLen+7+maxDomainLen)
	if user != "" {
		// RFC 1929.
		buf = append(buf, passwordVer, byte(len(user)))
		buf = append(buf, user...)
		buf = append(buf, byte(len(pass)))
		buf = append(buf, pass...)
		_, err := c.Write(buf)
		clear(buf)
		if err != nil {
			return socksAddr{}, err
		}
		if _, err := io.ReadFull(c, hdr[:2]); err != nil {
			return socksAddr{}, readErr(err, "authentication reply")
		}
		if hdr[0] != passwordVer {
			return socksAddr{}, fmt.Errorf("%w: version %d in authentication reply, want 1", ErrSOCKSProtocol, hdr[0])
		}
		if hdr[1] != 0 {
			return socksAddr{}, fmt.Errorf("%w: username/password refused (status 0x%02X)", ErrSOCKSAuth, hdr[1])
		}
	}

	buf = append(buf[:0], socksVersion, cmd, 0)
	buf = dst.appendTo(buf)
	if _, err := c.Write(buf); err != nil {
		return socksAddr{}, err
	}
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return socksAddr{}, readErr(err, "reply")
	}
	if hdr[0] != socksVersion {
		return socksAddr{}, fmt.Errorf("%w: version %d in reply, want 5", ErrSOCKSProtocol, hdr[0])
	}
	if code := ReplyCode(hdr[1]); code != ReplySucceeded {
		return socksAddr{}, &SOCKSError{Cmd: cmdNames[cmd], Addr: dst.String(), Code: code}
	}
	var bound socksAddr
	var port [2]byte
	switch hdr[3] {
	case atypIPv4, atypIPv6:
		ip := make([]byte, 4)
		if hdr[3] == atypIPv6 {
			ip = make([]byte, 16)
		}
		if _, err := io.ReadFull(c, ip); err != nil {
			return socksAddr{}, readErr(err, "bound address")
		}
		bound.ip, _ = netip.AddrFromSlice(ip)
	case atypDomain:
		if _, err := io.ReadFull(c, port[:1]); err != nil {
			return socksAddr{}, readErr(err, "bound address")
		}
		name := make([]byte, port[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return socksAddr{}, readErr(err, "bound address")
		}
		bound.host = string(name)
	default:
		return socksAddr{}, fmt.Errorf("%w: unknown address type 0x%02X in reply", ErrSOCKSProtocol, hdr[3])
	}
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return socksAddr{}, readErr(err, "bound port")
	}
	bound.port = binary.BigEndian.Uint16(port[:])
	return bound, nil
}

func readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: connection closed by the SOCKS server before its %s", ErrSOCKSProtocol, what)
	}
	return err
}
