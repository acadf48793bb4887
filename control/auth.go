package control

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Authentication methods, as listed by PROTOCOLINFO.
const (
	AuthNull           = "NULL"
	AuthHashedPassword = "HASHEDPASSWORD"
	AuthCookie         = "COOKIE"
	AuthSafeCookie     = "SAFECOOKIE"
)

// ProtocolInfo is tor's answer to PROTOCOLINFO (control-spec §3.21).
type ProtocolInfo struct {
	// PIVersion is the protocol-info version of the reply (1).
	PIVersion int
	// AuthMethods are the methods tor accepts, as tor spells them; unknown
	// ones are kept.
	AuthMethods []string
	// CookieFile is the path of the authentication cookie, decoded to its
	// bytes; empty unless COOKIE or SAFECOOKIE is offered.
	CookieFile string
	// TorVersion is tor's version, such as "0.4.9.11".
	TorVersion string
}

// HasMethod reports whether tor offers the given authentication method.
func (p *ProtocolInfo) HasMethod(m string) bool { return slices.Contains(p.AuthMethods, m) }

// ProtocolInfo asks tor which authentication methods it accepts. Before
// authentication tor answers PROTOCOLINFO only once per connection (a
// second one closes the connection), so the answer is cached: later calls
// return the same value.
func (c *Conn) ProtocolInfo(ctx context.Context) (*ProtocolInfo, error) {
	c.piMu.Lock()
	defer c.piMu.Unlock()
	if c.pi != nil {
		return c.pi, nil
	}
	reply, err := c.Request(ctx, "PROTOCOLINFO 1")
	if err != nil {
		return nil, err
	}
	pi, err := parseProtocolInfo(reply)
	if err != nil {
		return nil, err
	}
	c.pi = pi
	return pi, nil
}

func parseProtocolInfo(reply *Reply) (*ProtocolInfo, error) {
	pi := &ProtocolInfo{}
	for _, l := range reply.Lines {
		kw, rest, _ := strings.Cut(l.Text, " ")
		switch kw {
		case "PROTOCOLINFO":
			v, _, _ := strings.Cut(rest, " ")
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%w: bad PROTOCOLINFO version %q", ErrProtocol, trimForError(v))
			}
			pi.PIVersion = n
		case "AUTH":
			args, err := ParseArgs(rest)
			if err != nil {
				return nil, fmt.Errorf("%w: PROTOCOLINFO AUTH line: %w", ErrProtocol, err)
			}
			if m, ok := args.Get("METHODS"); ok && m != "" {
				pi.AuthMethods = strings.Split(m, ",")
			}
			pi.CookieFile, _ = args.Get("COOKIEFILE")
		case "VERSION":
			args, err := ParseArgs(rest)
			if err != nil {
				return nil, fmt.Errorf("%w: PROTOCOLINFO VERSION line: %w", ErrProtocol, err)
			}
			pi.TorVersion, _ = args.Get("Tor")
		}
	}
	if pi.AuthMethods == nil {
		return nil, fmt.Errorf("%w: PROTOCOLINFO reply without AUTH METHODS", ErrProtocol)
	}
	return pi, nil
}

// AuthOption is an option for [Conn.Authenticate].
type AuthOption func(*authConfig)

type authConfig struct {
	password    *string
	cookiePath  string
	method      string
	clientNonce []byte // tests only
}

// WithPassword gives the control password (HashedControlPassword); it is
// sent hex-encoded, so it may contain any bytes.
func WithPassword(password string) AuthOption {
	return func(a *authConfig) { a.password = &password }
}

// WithCookieFile reads the authentication cookie from path instead of the
// COOKIEFILE tor reports (useful when tor runs in another mount namespace
// or container).
func WithCookieFile(path string) AuthOption {
	return func(a *authConfig) { a.cookiePath = path }
}

// WithAuthMethod forces one method (AuthSafeCookie, AuthCookie,
// AuthHashedPassword or AuthNull) instead of choosing.
func WithAuthMethod(method string) AuthOption {
	return func(a *authConfig) { a.method = strings.ToUpper(method) }
}

// AuthError is returned when authentication fails. It says which methods
// tor offered, which one was tried (empty when none was possible) and why
// it failed; it unwraps to the cause (a *Error with code 515 for a wrong
// password or cookie, a file error for an unreadable cookie, ...). Tor
// closes the connection after a failed AUTHENTICATE, so trying again needs
// a new connection.
type AuthError struct {
	Offered []string
	Method  string
	Err     error
}

// Error describes the failure, the methods offered and the one tried.
func (e *AuthError) Error() string {
	m := e.Method
	if m == "" {
		m = "no usable method"
	}
	return fmt.Sprintf("control: authentication failed (tor offers %s; tried %s): %v",
		strings.Join(e.Offered, ","), m, e.Err)
}

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// ErrServerHashMismatch is matched by the error Authenticate returns when
// tor's SAFECOOKIE server hash is wrong: the other end does not know the
// cookie, so it may not be the tor we meant to reach. The connection is
// closed without answering.
var ErrServerHashMismatch = errors.New("control: SAFECOOKIE server hash mismatch")

// cookieSize is the size of tor's authentication cookie; other sizes are
// refused.
const cookieSize = 32

// Authenticate authenticates the connection (control-spec §3.5), asking tor
// for PROTOCOLINFO first if that was not done yet. It picks one method from
// what tor offers and what the caller has:
//
//   - SAFECOOKIE when the cookie file can be read (COOKIE only when
//     SAFECOOKIE is not offered); tor's server hash is verified in
//     constant time before answering;
//   - HASHEDPASSWORD when a password is given ([WithPassword]);
//   - NULL when offered.
//
// [WithAuthMethod] forces a method. On failure the error is an *AuthError.
func (c *Conn) Authenticate(ctx context.Context, opts ...AuthOption) error {
	var cfg authConfig
	for _, o := range opts {
		o(&cfg)
	}
	pi, err := c.ProtocolInfo(ctx)
	if err != nil {
		return err
	}
	cookiePath := cfg.cookiePath
	if cookiePath == "" {
		cookiePath = pi.CookieFile
	}
	var (
		cookie    []byte
		cookieErr error
	)
	readCookie := func() ([]byte, error) {
		if cookie == nil && cookieErr == nil {
			cookie, cookieErr = ReadCookie(cookiePath)
		}
		return cookie, cookieErr
	}
	fail := func(method string, err error) error {
		return &AuthError{Offered: pi.AuthMethods, Method: method, Err: err}
	}

	method := cfg.method
	if method == "" {
		var reasons []string
		if pi.HasMethod(AuthSafeCookie) || pi.HasMethod(AuthCookie) {
			if _, err := readCookie(); err != nil {
				reasons = append(reasons, err.Error())
			} else if pi.HasMethod(AuthSafeCookie) {
				method = AuthSafeCookie
			} else {
				method = AuthCookie
			}
		}
		if method == "" {
			switch {
			case pi.HasMethod(AuthHashedPassword) && cfg.password != nil:
				method = AuthHashedPassword
			case pi.HasMethod(AuthNull):
				method = AuthNull
			case pi.HasMethod(AuthHashedPassword):
				reasons = append(reasons, "no password given")
			}
		}
		if method == "" {
			if len(reasons) == 0 {
				reasons = append(reasons, "no supported method offered")
			}
			return fail("", errors.New(strings.Join(reasons, "; ")))
		}
	}

	var line string
	switch method {
	case AuthNull:
		line = "AUTHENTICATE"
	case AuthHashedPassword:
		if cfg.password == nil {
			return fail(method, errors.New("no password given"))
		}
		line = "AUTHENTICATE " + hex.EncodeToString([]byte(*cfg.password))
	case AuthCookie:
		ck, err := readCookie()
		if err != nil {
			return fail(method, err)
		}
		line = "AUTHENTICATE " + hex.EncodeToString(ck)
	case AuthSafeCookie:
		ck, err := readCookie()
		if err != nil {
			return fail(method, err)
		}
		resp, err := c.safeCookie(ctx, ck, cfg.clientNonce)
		if err != nil {
			return fail(method, err)
		}
		line = "AUTHENTICATE " + hex.EncodeToString(resp)
	default:
		return fail(method, fmt.Errorf("%w: unknown authentication method %q", ErrInvalidArgument, method))
	}
	if _, err := c.roundTrip(ctx, newRequest("AUTHENTICATE", line, nil)); err != nil {
		return fail(method, err)
	}
	return nil
}

// ReadCookie reads tor's authentication cookie file and checks its size.
func ReadCookie(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("tor reported no cookie file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, cookieSize+1))
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	if len(b) != cookieSize {
		return nil, fmt.Errorf("cookie file %s: not %d bytes long", path, cookieSize)
	}
	return b, nil
}

const (
	safeCookieServerKey = "Tor safe cookie authentication server-to-controller hash"
	safeCookieClientKey = "Tor safe cookie authentication controller-to-server hash"
)

// safeCookie runs AUTHCHALLENGE and returns the controller's hash to send.
func (c *Conn) safeCookie(ctx context.Context, cookie, clientNonce []byte) ([]byte, error) {
	if clientNonce == nil {
		clientNonce = make([]byte, 32)
		if _, err := io.ReadFull(c.rand, clientNonce); err != nil {
			return nil, err
		}
	}
	serverHash, serverNonce, err := c.AuthChallenge(ctx, clientNonce)
	if err != nil {
		return nil, err
	}
	msg := slices.Concat(cookie, clientNonce, serverNonce)
	want := hmacSHA256(safeCookieServerKey, msg)
	if !hmac.Equal(want, serverHash) {
		c.Close()
		return nil, ErrServerHashMismatch
	}
	return hmacSHA256(safeCookieClientKey, msg), nil
}

func hmacSHA256(key string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(key))
	h.Write(msg)
	return h.Sum(nil)
}

// AuthChallenge sends AUTHCHALLENGE SAFECOOKIE with the client nonce
// (control-spec §3.24) and returns tor's server hash and server nonce.
// Authenticate does this itself; the method exists for custom flows.
func (c *Conn) AuthChallenge(ctx context.Context, clientNonce []byte) (serverHash, serverNonce []byte, err error) {
	reply, err := c.Request(ctx, "AUTHCHALLENGE SAFECOOKIE "+hex.EncodeToString(clientNonce))
	if err != nil {
		return nil, nil, err
	}
	rest, ok := strings.CutPrefix(reply.Text(), "AUTHCHALLENGE ")
	if !ok {
		return nil, nil, fmt.Errorf("%w: unexpected AUTHCHALLENGE reply %q", ErrProtocol, trimForError(reply.Text()))
	}
	args, err := ParseArgs(rest)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: AUTHCHALLENGE reply: %w", ErrProtocol, err)
	}
	sh, _ := args.Get("SERVERHASH")
	sn, _ := args.Get("SERVERNONCE")
	if serverHash, err = hex.DecodeString(sh); err != nil || len(serverHash) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: bad SERVERHASH in AUTHCHALLENGE reply", ErrProtocol)
	}
	if serverNonce, err = hex.DecodeString(sn); err != nil || len(serverNonce) == 0 {
		return nil, nil, fmt.Errorf("%w: bad SERVERNONCE in AUTHCHALLENGE reply", ErrProtocol)
	}
	return serverHash, serverNonce, nil
}

// HashPassword returns the value for tor's HashedControlPassword (or
// __HashedControlSessionPassword) option for password: "16:" and the hex of
// a random 8-byte salt, the count byte 0x60 and the iterated, salted
// SHA-1 S2K hash (OpenPGP, RFC 4880 §3.7.1.3), like tor --hash-password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return hashPassword(password, salt, 0x60), nil
}

func hashPassword(password string, salt []byte, c byte) string {
	count := (16 + int(c&15)) << (int(c>>4) + 6)
	sp := append(slices.Clone(salt), password...)
	count = max(count, len(sp))
	h := sha1.New()
	for count > 0 {
		n := min(count, len(sp))
		h.Write(sp[:n])
		count -= n
	}
	out := slices.Concat(salt, []byte{c}, h.Sum(nil))
	return "16:" + strings.ToUpper(hex.EncodeToString(out))
}
