package control

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
)

// fakeAuth is a Go implementation of tor's authentication, for tests.
type fakeAuth struct {
	methods       string
	cookieFile    string // as tor would print it (already escaped)
	cookie        []byte
	password      string
	badServerHash bool
	extraLines    []string

	got []string // commands received
}

func (f *fakeAuth) serve(s *controltest.Conn) {
	var clientNonce, serverNonce []byte
	for {
		cmd, err := s.ReadCommand()
		if err != nil {
			return
		}
		f.got = append(f.got, cmd.Keyword)
		switch cmd.Keyword {
		case "PROTOCOLINFO":
			lines := []string{"250-PROTOCOLINFO 1"}
			auth := "250-AUTH METHODS=" + f.methods
			if f.cookieFile != "" {
				auth += " COOKIEFILE=" + f.cookieFile
			}
			lines = append(lines, auth)
			lines = append(lines, f.extraLines...)
			lines = append(lines, `250-VERSION Tor="0.4.9.11" EXTRA=1`, "250 OK")
			s.Reply(lines...)
		case "AUTHCHALLENGE":
			fields := strings.Fields(cmd.Args)
			clientNonce, _ = hex.DecodeString(fields[1])
			serverNonce = bytes.Repeat([]byte{0x5a}, 32)
			msg := slices.Concat(f.cookie, clientNonce, serverNonce)
			sh := hmacSHA256(safeCookieServerKey, msg)
			if f.badServerHash {
				sh[0] ^= 1
			}
			s.Reply("250 AUTHCHALLENGE SERVERHASH=" + strings.ToUpper(hex.EncodeToString(sh)) + " SERVERNONCE=" + hex.EncodeToString(serverNonce))
		case "AUTHENTICATE":
			want := map[string]bool{}
			if strings.Contains(f.methods, "NULL") {
				want[cmd.Args] = true
			}
			if f.cookie != nil {
				want[hex.EncodeToString(f.cookie)] = true
				if clientNonce != nil {
					want[hex.EncodeToString(hmacSHA256(safeCookieClientKey, slices.Concat(f.cookie, clientNonce, serverNonce)))] = true
				}
			}
			if f.password != "" {
				want[hex.EncodeToString([]byte(f.password))] = true
			}
			if want[strings.ToLower(cmd.Args)] {
				s.Reply("250 OK")
				continue
			}
			s.Reply("515 Authentication failed: Password did not match HashedControlPassword *or* authentication cookie.")
			return
		case "GETINFO":
			s.Reply("250-version=0.4.9.11", "250 OK")
		default:
			s.Reply("510 Unrecognized command")
		}
	}
}

func writeCookie(t *testing.T, dir string, size int) string {
	t.Helper()
	p := filepath.Join(dir, "control_auth_cookie")
	require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{0xc0}, size), 0o600))
	return p
}

func TestAuthenticateMethods(t *testing.T) {
	dir := t.TempDir()
	cookiePath := writeCookie(t, dir, 32)
	cookie, _ := os.ReadFile(cookiePath)
	ctx := context.Background()
	tests := []struct {
		name   string
		fa     fakeAuth
		opts   []AuthOption
		method string // expected AUTHENTICATE flow
		cmds   []string
	}{
		{"safecookie preferred", fakeAuth{methods: "COOKIE,SAFECOOKIE,HASHEDPASSWORD", cookieFile: quoteString(cookiePath), cookie: cookie, password: "pw"},
			[]AuthOption{WithPassword("pw")}, AuthSafeCookie, []string{"PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE", "GETINFO"}},
		{"cookie when safecookie is not offered", fakeAuth{methods: "COOKIE", cookieFile: quoteString(cookiePath), cookie: cookie},
			nil, AuthCookie, []string{"PROTOCOLINFO", "AUTHENTICATE", "GETINFO"}},
		{"password when the cookie is unreadable", fakeAuth{methods: "COOKIE,SAFECOOKIE,HASHEDPASSWORD", cookieFile: `"/nonexistent/cookie"`, password: "p\"w\\x"},
			[]AuthOption{WithPassword("p\"w\\x")}, AuthHashedPassword, []string{"PROTOCOLINFO", "AUTHENTICATE", "GETINFO"}},
		{"null", fakeAuth{methods: "NULL"}, nil, AuthNull, []string{"PROTOCOLINFO", "AUTHENTICATE", "GETINFO"}},
		{"unknown methods and lines ignored", fakeAuth{methods: "FUTURE,NULL", extraLines: []string{"250-FUTURELINE x=y", "250-AUTH2 z"}},
			nil, AuthNull, []string{"PROTOCOLINFO", "AUTHENTICATE", "GETINFO"}},
		{"cookie path override", fakeAuth{methods: "SAFECOOKIE", cookieFile: `"/elsewhere/cookie"`, cookie: cookie},
			[]AuthOption{WithCookieFile(cookiePath)}, AuthSafeCookie, []string{"PROTOCOLINFO", "AUTHCHALLENGE", "AUTHENTICATE", "GETINFO"}},
		{"forced method", fakeAuth{methods: "COOKIE,SAFECOOKIE", cookieFile: quoteString(cookiePath), cookie: cookie},
			[]AuthOption{WithAuthMethod("cookie")}, AuthCookie, []string{"PROTOCOLINFO", "AUTHENTICATE", "GETINFO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := tt.fa
			c := fake(t, fa.serve)
			require.NoError(t, c.Authenticate(ctx, tt.opts...))
			_, err := c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
			c.Close()
			assert.Equal(t, tt.cmds, fa.got)
		})
	}
}

func TestAuthenticateEscapedCookiePath(t *testing.T) {
	// COOKIEFILE is written with C escapes (esc_for_log): quotes,
	// backslashes and UTF-8 (as octal) must be decoded to the real path.
	dir := filepath.Join(t.TempDir(), `we"ird \dir é`)
	require.NoError(t, os.Mkdir(dir, 0o700))
	cookiePath := writeCookie(t, dir, 32)
	cookie, _ := os.ReadFile(cookiePath)
	escaped := QuoteCString(cookiePath) // what tor prints
	assert.Contains(t, escaped, `\303\251`)
	fa := fakeAuth{methods: "SAFECOOKIE", cookieFile: escaped, cookie: cookie}
	c := fake(t, fa.serve)
	pi, err := c.ProtocolInfo(context.Background())
	require.NoError(t, err)
	assert.Equal(t, cookiePath, pi.CookieFile)
	assert.Equal(t, "0.4.9.11", pi.TorVersion)
	assert.True(t, pi.HasMethod(AuthSafeCookie))
	require.NoError(t, c.Authenticate(context.Background()))
}

func TestAuthenticateFailures(t *testing.T) {
	dir := t.TempDir()
	cookiePath := writeCookie(t, dir, 32)
	cookie, _ := os.ReadFile(cookiePath)
	shortCookie := writeCookie(t, t.TempDir(), 31)
	ctx := context.Background()

	t.Run("server hash mismatch", func(t *testing.T) {
		fa := fakeAuth{methods: "SAFECOOKIE", cookieFile: quoteString(cookiePath), cookie: cookie, badServerHash: true}
		c := fake(t, fa.serve)
		err := c.Authenticate(ctx)
		assert.ErrorIs(t, err, ErrServerHashMismatch)
		var ae *AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, AuthSafeCookie, ae.Method)
		<-c.Done() // closed without answering
		assert.Equal(t, []string{"PROTOCOLINFO", "AUTHCHALLENGE"}, fa.got)
	})
	t.Run("cookie of the wrong size", func(t *testing.T) {
		fa := fakeAuth{methods: "COOKIE,SAFECOOKIE", cookieFile: quoteString(shortCookie), cookie: cookie}
		c := fake(t, fa.serve)
		err := c.Authenticate(ctx)
		assert.ErrorContains(t, err, "not 32 bytes long")
		assert.ErrorContains(t, err, "tried no usable method")
		err = c.Authenticate(ctx, WithAuthMethod(AuthCookie))
		assert.ErrorContains(t, err, "not 32 bytes long")
		err = c.Authenticate(ctx, WithAuthMethod(AuthSafeCookie))
		assert.ErrorContains(t, err, "not 32 bytes long")
	})
	t.Run("wrong password", func(t *testing.T) {
		fa := fakeAuth{methods: "HASHEDPASSWORD", password: "right"}
		c := fake(t, fa.serve)
		err := c.Authenticate(ctx, WithPassword("wrong"))
		assert.ErrorIs(t, err, ErrBadAuthentication)
		assert.ErrorContains(t, err, "tried HASHEDPASSWORD")
	})
	t.Run("no password", func(t *testing.T) {
		fa := fakeAuth{methods: "HASHEDPASSWORD"}
		c := fake(t, fa.serve)
		err := c.Authenticate(ctx, WithAuthMethod(AuthHashedPassword))
		assert.ErrorContains(t, err, "no password given")
		err = c.Authenticate(ctx, WithAuthMethod("BOGUS"))
		assert.ErrorIs(t, err, ErrInvalidArgument)
	})
	t.Run("nothing offered", func(t *testing.T) {
		fa := fakeAuth{methods: "FUTURE"}
		c := fake(t, fa.serve)
		err := c.Authenticate(ctx)
		assert.EqualError(t, err, "control: authentication failed (tor offers FUTURE; tried no usable method): no supported method offered")
	})
	t.Run("no cookie file reported", func(t *testing.T) {
		_, err := ReadCookie("")
		assert.Error(t, err)
		_, err = ReadCookie(dir) // a directory
		assert.Error(t, err)
	})
}

func TestProtocolInfoMalformed(t *testing.T) {
	for name, lines := range map[string][]string{
		"no auth line":   {"250-PROTOCOLINFO 1", "250 OK"},
		"bad version":    {"250-PROTOCOLINFO x", "250-AUTH METHODS=NULL", "250 OK"},
		"bad auth line":  {"250-PROTOCOLINFO 1", `250-AUTH METHODS=NULL COOKIEFILE="unterminated`, "250 OK"},
		"bad version ln": {"250-PROTOCOLINFO 1", "250-AUTH METHODS=NULL", `250-VERSION Tor="x`, "250 OK"},
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(s *controltest.Conn) {
				s.ReadCommand()
				s.Reply(lines...)
				s.ReadLine()
			})
			_, err := c.ProtocolInfo(context.Background())
			assert.ErrorIs(t, err, ErrProtocol)
			err = c.Authenticate(context.Background()) // asks again: nothing was cached
			assert.Error(t, err)
		})
	}
}

func TestAuthChallengeMalformed(t *testing.T) {
	for name, reply := range map[string]string{
		"wrong keyword":   "250 OK",
		"no server hash":  "250 AUTHCHALLENGE SERVERNONCE=00",
		"short hash":      "250 AUTHCHALLENGE SERVERHASH=00 SERVERNONCE=00",
		"no server nonce": "250 AUTHCHALLENGE SERVERHASH=" + strings.Repeat("00", 32),
		"bad quoting":     `250 AUTHCHALLENGE SERVERHASH="x`,
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(s *controltest.Conn) {
				s.ReadCommand()
				s.Reply(reply)
				s.ReadLine()
			})
			_, _, err := c.AuthChallenge(context.Background(), []byte{1})
			assert.ErrorIs(t, err, ErrProtocol)
		})
	}
}

func TestHashPassword(t *testing.T) {
	// Outputs of tor --hash-password (tor 0.4.9.11).
	for pw, want := range map[string]string{
		"correct horse battery staple": "16:FBFC1C9CC2932D4F6036213B7BFB98A3753AE61AC1A49F13A8F3396FEB",
		"x":                            "16:6216BE1D7F5E5D056023CD17D26F7C43F0EEE7F4B2BBC80446CAE7F662",
	} {
		raw, err := hex.DecodeString(want[3:])
		require.NoError(t, err)
		assert.Equal(t, want, hashPassword(pw, raw[:8], raw[8]))
	}
	h1, err := HashPassword("pw")
	require.NoError(t, err)
	h2, _ := HashPassword("pw")
	assert.NotEqual(t, h1, h2, "salted")
	assert.Len(t, h1, 3+2*(8+1+20))
	// A count smaller than salt+password hashes everything once.
	assert.Len(t, hashPassword(strings.Repeat("p", 100), make([]byte, 8), 0x00), len(h1))
}

// The handshake must not log secrets: the default logger discards, and a
// logger given by the caller never sees the password or cookie.
func TestAuthenticateLogsNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	fa := fakeAuth{methods: "HASHEDPASSWORD", password: "s3cret-pw"}
	cli, srv := net.Pipe()
	sc := controltest.NewConn(srv)
	go fa.serve(sc)
	c := NewConn(cli, WithLogger(newTestLogger(&logs)))
	require.NoError(t, c.Authenticate(context.Background(), WithPassword("s3cret-pw")))
	c.Close()
	sc.Close()
	assert.NotContains(t, logs.String(), "s3cret")
	assert.NotContains(t, logs.String(), hex.EncodeToString([]byte("s3cret-pw")))
}
