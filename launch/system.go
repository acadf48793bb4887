package launch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/control"
)

// ErrNoTor matches the error of [System] when no endpoint gave an
// authenticated connection.
var ErrNoTor = errors.New("launch: no usable running tor")

// Endpoint is a control port address: Network "unix" with a socket path,
// or "tcp" with "host:port".
type Endpoint struct {
	Network string
	Address string
}

func (e Endpoint) String() string { return e.Network + ":" + e.Address }

// DefaultEndpoints are the usual control ports of a system tor: the
// Debian/Ubuntu unix sockets, tor's default ControlPort 9051 and the Tor
// Browser's 9151.
func DefaultEndpoints() []Endpoint {
	return []Endpoint{
		{"unix", "/run/tor/control"},
		{"unix", "/var/run/tor/control"},
		{"tcp", "127.0.0.1:9051"},
		{"tcp", "127.0.0.1:9151"},
	}
}

// SystemOptions configure [System].
type SystemOptions struct {
	// Endpoints are tried in order; DefaultEndpoints when empty.
	Endpoints []Endpoint
	// Password is asked for the control password when tor offers
	// HASHEDPASSWORD and cookie authentication is not possible. It is
	// called at most once.
	Password func(ctx context.Context) (string, error)
	// CookieFile overrides the cookie path tor reports (for a tor in
	// another mount namespace).
	CookieFile string
	// DialTimeout bounds each connection attempt (5 s when zero).
	DialTimeout time.Duration
	// Logger, when set, receives launch's messages.
	Logger *slog.Logger

	// BootstrapTimeout, StallTimeout, Progress and Warning apply to
	// Tor.WaitBootstrap (System itself does not wait; the network of a
	// system tor is never changed), as in Options.
	BootstrapTimeout time.Duration
	StallTimeout     time.Duration
	Progress         func(*control.Bootstrap)
	Warning          func(*control.Bootstrap)
}

// Attempt is one way System tried to reach a tor.
type Attempt struct {
	Endpoint Endpoint
	Method   string // the auth method, "" for a failed dial or PROTOCOLINFO
	Err      error
}

// SystemError lists what System tried and why each attempt failed. It
// matches ErrNoTor and each attempt's error.
type SystemError struct {
	Attempts []Attempt
}

func (e *SystemError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoTor.Error())
	if len(e.Attempts) == 0 {
		b.WriteString(": no endpoint to try")
	}
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		var op *net.OpError
		if a.Method == "" && errors.As(a.Err, &op) {
			// A dial error names the endpoint itself.
			b.WriteString(a.Err.Error())
			continue
		}
		b.WriteString(a.Endpoint.String())
		if a.Method != "" {
			b.WriteString(" (" + a.Method + ")")
		}
		b.WriteString(": ")
		b.WriteString(a.Err.Error())
	}
	return b.String()
}

// Unwrap returns ErrNoTor and every attempt's error.
func (e *SystemError) Unwrap() []error {
	errs := []error{ErrNoTor}
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// System attaches to a tor that is already running. For each endpoint it
// asks PROTOCOLINFO and tries, on a new connection each time (tor closes
// the connection after a failed AUTHENTICATE), NULL, then SAFECOOKIE (or
// COOKIE) when the cookie file is readable, then HASHEDPASSWORD when
// opts.Password is set. When nothing works, the error is a [*SystemError]
// listing every attempt. Closing the returned Tor closes only our
// connection.
func System(ctx context.Context, opts SystemOptions) (*Tor, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	endpoints := opts.Endpoints
	if len(endpoints) == 0 {
		endpoints = DefaultEndpoints()
	}
	dialTimeout := opts.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	s := &systemAttach{ctx: ctx, opts: opts, logger: logger, dialTimeout: dialTimeout}
	for _, ep := range endpoints {
		if conn, cookie := s.try(ep); conn != nil {
			t := &Tor{
				conn:       conn,
				ctlNetwork: ep.Network,
				ctlAddr:    ep.Address,
				cookieFile: cookie,
				logger:     logger,
				bootstrap:  newBootstrapConfig(opts.BootstrapTimeout, opts.StallTimeout, opts.Progress, opts.Warning),
				netMu:      new(sync.Mutex),
			}
			return t, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &SystemError{Attempts: s.attempts}
}

type systemAttach struct {
	ctx         context.Context
	opts        SystemOptions
	logger      *slog.Logger
	dialTimeout time.Duration
	attempts    []Attempt

	password    string
	passwordErr error
	askedPass   bool
}

func (s *systemAttach) fail(ep Endpoint, method string, err error) {
	s.logger.Debug("system tor attempt failed", "endpoint", ep.String(), "method", method, "err", err)
	s.attempts = append(s.attempts, Attempt{Endpoint: ep, Method: method, Err: err})
}

func (s *systemAttach) dial(ep Endpoint) (*control.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.dialTimeout)
	defer cancel()
	return control.Dial(ctx, ep.Network, ep.Address, control.WithLogger(s.logger))
}

// try returns an authenticated connection to ep, or nil after recording
// why not.
func (s *systemAttach) try(ep Endpoint) (*control.Conn, string) {
	conn, err := s.dial(ep)
	if err != nil {
		s.fail(ep, "", err)
		return nil, ""
	}
	pi, err := conn.ProtocolInfo(s.ctx)
	if err != nil {
		conn.Close()
		s.fail(ep, "", fmt.Errorf("PROTOCOLINFO: %w", err))
		return nil, ""
	}
	before := len(s.attempts)
	cookieFile := pi.CookieFile
	if s.opts.CookieFile != "" {
		cookieFile = s.opts.CookieFile
	}
	type plan struct {
		method string
		opts   []control.AuthOption
	}
	var plans []plan
	if pi.HasMethod(control.AuthNull) {
		plans = append(plans, plan{method: control.AuthNull})
	}
	if pi.HasMethod(control.AuthSafeCookie) || pi.HasMethod(control.AuthCookie) {
		method := control.AuthSafeCookie
		if !pi.HasMethod(method) {
			method = control.AuthCookie
		}
		if _, err := control.ReadCookie(cookieFile); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				err = fmt.Errorf("%w (the cookie belongs to tor's group: join it, e.g. sudo adduser $USER debian-tor, and log in again)", err)
			}
			s.fail(ep, method, fmt.Errorf("cookie not readable: %w", err))
		} else {
			plans = append(plans, plan{method, []control.AuthOption{control.WithCookieFile(cookieFile)}})
		}
	}
	if pi.HasMethod(control.AuthHashedPassword) {
		if s.opts.Password == nil {
			s.fail(ep, control.AuthHashedPassword, errors.New("tor wants a password and SystemOptions.Password is not set"))
		} else {
			plans = append(plans, plan{method: control.AuthHashedPassword})
		}
	}
	if len(plans) == 0 && len(s.attempts) == before {
		s.fail(ep, "", fmt.Errorf("no supported authentication method among %v", pi.AuthMethods))
	}
	for i, p := range plans {
		if p.method == control.AuthHashedPassword {
			pw, err := s.askPassword()
			if err != nil {
				s.fail(ep, p.method, err)
				continue
			}
			p.opts = append(p.opts, control.WithPassword(pw))
		}
		if i > 0 || conn == nil {
			if conn != nil {
				conn.Close()
			}
			if conn, err = s.dial(ep); err != nil {
				s.fail(ep, p.method, fmt.Errorf("redial: %w", err))
				return nil, ""
			}
		}
		err := conn.Authenticate(s.ctx, append(p.opts, control.WithAuthMethod(p.method))...)
		if err == nil {
			return conn, cookieFile
		}
		conn.Close()
		conn = nil
		s.fail(ep, p.method, err)
		if s.ctx.Err() != nil {
			return nil, ""
		}
	}
	if conn != nil {
		conn.Close()
	}
	return nil, ""
}

func (s *systemAttach) askPassword() (string, error) {
	if !s.askedPass {
		s.askedPass = true
		s.password, s.passwordErr = s.opts.Password(s.ctx)
		if s.passwordErr != nil {
			s.passwordErr = fmt.Errorf("password callback: %w", s.passwordErr)
		}
	}
	return s.password, s.passwordErr
}
