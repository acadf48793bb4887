package process

// A minimal control-protocol speaker: Start needs only to check that tor
// answers, read a few GETINFO keys and, without an owning descriptor,
// authenticate with the cookie and send TAKEOWNERSHIP. The full client is
// package control.

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gotorcon/tor/control"
)

// ErrProtocol is returned (wrapped) when tor's control connection answers
// something that is not a control-protocol reply.
var ErrProtocol = errors.New("control protocol error")

const maxReplyLines = 1000

type replyLine struct {
	code string
	sep  byte // '-', '+' or ' '
	text string
	data string // for '+' lines: the data block
}

// ctlSession is a control connection with its reader.
type ctlSession struct {
	conn net.Conn
	br   *bufio.Reader
}

func newSession(conn net.Conn) *ctlSession {
	return &ctlSession{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
}

// release returns the connection for the caller; bytes the reader buffered
// (there should be none: tor sends nothing unasked) are kept in front.
func (s *ctlSession) release() net.Conn {
	s.conn.SetDeadline(time.Time{})
	if s.br.Buffered() == 0 {
		return s.conn
	}
	return &bufferedConn{Conn: s.conn, r: s.br}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// do sends one command line and reads its reply. A context that ends makes
// the pending I/O fail at once.
func (s *ctlSession) do(ctx context.Context, line string) ([]replyLine, error) {
	if strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("%w: command contains CR or LF", ErrProtocol)
	}
	stop := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := s.conn.Write([]byte(line + "\r\n")); err != nil {
		return nil, s.ioErr(ctx, err)
	}
	var lines []replyLine
	for len(lines) < maxReplyLines {
		l, err := s.readLine()
		if err != nil {
			return nil, s.ioErr(ctx, err)
		}
		if len(l) < 4 || !isDigits(l[:3]) || (l[3] != ' ' && l[3] != '-' && l[3] != '+') {
			return nil, fmt.Errorf("%w: malformed reply line %q", ErrProtocol, truncate(l, 80))
		}
		rl := replyLine{code: l[:3], sep: l[3], text: l[4:]}
		if rl.sep == '+' {
			var data []string
			for {
				d, err := s.readLine()
				if err != nil {
					return nil, s.ioErr(ctx, err)
				}
				if d == "." {
					break
				}
				data = append(data, strings.TrimPrefix(d, "."))
			}
			rl.data = strings.Join(data, "\n")
		}
		if rl.code[0] == '6' { // an asynchronous event: not ours
			continue
		}
		lines = append(lines, rl)
		if rl.sep == ' ' {
			return lines, nil
		}
	}
	return nil, fmt.Errorf("%w: reply too long", ErrProtocol)
}

func (s *ctlSession) readLine() (string, error) {
	line, err := s.br.ReadString('\n')
	if err != nil {
		if err == bufio.ErrBufferFull || (len(line) > 0 && err == nil) {
			return "", fmt.Errorf("%w: line too long", ErrProtocol)
		}
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

func (s *ctlSession) ioErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// ok checks that a reply is a success (2xx) and returns it.
func checkOK(lines []replyLine, err error) ([]replyLine, error) {
	if err != nil {
		return nil, err
	}
	last := lines[len(lines)-1]
	if last.code[0] != '2' {
		return nil, fmt.Errorf("process: tor replied %s %s", last.code, last.text)
	}
	return lines, nil
}

// getInfo reads GETINFO keys; values tor quotes are left quoted.
func (s *ctlSession) getInfo(ctx context.Context, keys ...string) (map[string]string, error) {
	lines, err := checkOK(s.do(ctx, "GETINFO "+strings.Join(keys, " ")))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l.text, "=")
		if !ok {
			continue
		}
		if l.sep == '+' {
			v = l.data
		}
		m[k] = v
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%w: GETINFO reply lacks %s", ErrProtocol, k)
		}
	}
	return m, nil
}

// authenticate authenticates with the cookie (SAFECOOKIE, else COOKIE) or
// with no credentials when tor allows that.
func (s *ctlSession) authenticate(ctx context.Context, cookieFile string) error {
	lines, err := checkOK(s.do(ctx, "PROTOCOLINFO 1"))
	if err != nil {
		return fmt.Errorf("PROTOCOLINFO: %w", err)
	}
	methods := map[string]bool{}
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l.text, "AUTH METHODS=")
		if !ok {
			continue
		}
		ms, tail, _ := strings.Cut(rest, " ")
		for _, m := range strings.Split(ms, ",") {
			methods[m] = true
		}
		if f, ok := strings.CutPrefix(tail, "COOKIEFILE="); ok && cookieFile == "" {
			if v, _, err := unquote(f); err == nil {
				cookieFile = v
			}
		}
	}
	switch {
	case methods["NULL"]:
		_, err = checkOK(s.do(ctx, "AUTHENTICATE"))
	case methods["SAFECOOKIE"] || methods["COOKIE"]:
		cookie, rerr := os.ReadFile(cookieFile)
		if rerr != nil {
			return fmt.Errorf("read cookie: %w", rerr)
		}
		if len(cookie) != 32 {
			return fmt.Errorf("cookie file %s has %d bytes, want 32", cookieFile, len(cookie))
		}
		if methods["SAFECOOKIE"] {
			err = s.safeCookie(ctx, cookie)
		} else {
			_, err = checkOK(s.do(ctx, "AUTHENTICATE "+hex.EncodeToString(cookie)))
		}
	default:
		return fmt.Errorf("no usable authentication method (tor offers %v)", keys(methods))
	}
	if err != nil {
		return fmt.Errorf("AUTHENTICATE: %w", err)
	}
	return nil
}

func (s *ctlSession) safeCookie(ctx context.Context, cookie []byte) error {
	clientNonce := make([]byte, 32)
	rand.Read(clientNonce)
	lines, err := checkOK(s.do(ctx, "AUTHCHALLENGE SAFECOOKIE "+hex.EncodeToString(clientNonce)))
	if err != nil {
		return err
	}
	var serverHash, serverNonce []byte
	for _, f := range strings.Fields(lines[len(lines)-1].text) {
		if v, ok := strings.CutPrefix(f, "SERVERHASH="); ok {
			serverHash, _ = hex.DecodeString(v)
		}
		if v, ok := strings.CutPrefix(f, "SERVERNONCE="); ok {
			serverNonce, _ = hex.DecodeString(v)
		}
	}
	if serverHash == nil || serverNonce == nil {
		return fmt.Errorf("%w: bad AUTHCHALLENGE reply", ErrProtocol)
	}
	msg := append(append(append([]byte(nil), cookie...), clientNonce...), serverNonce...)
	mac := func(key string) []byte {
		h := hmac.New(sha256.New, []byte(key))
		h.Write(msg)
		return h.Sum(nil)
	}
	if !hmac.Equal(serverHash, mac("Tor safe cookie authentication server-to-controller hash")) {
		return errors.New("tor's SAFECOOKIE server hash does not match the cookie")
	}
	_, err = checkOK(s.do(ctx, "AUTHENTICATE "+hex.EncodeToString(mac("Tor safe cookie authentication controller-to-server hash"))))
	return err
}

// unquote decodes a control-protocol quoted string (C escapes) at the start
// of s and returns the rest of s after it.
func unquote(s string) (string, string, error) {
	v, rest, err := control.ReadQuoted(s)
	if err != nil {
		return "", s, fmt.Errorf("%w: %v in %q", ErrProtocol, err, truncate(s, 40))
	}
	return v, rest, nil
}

// unquoteList decodes a space-separated list of quoted strings, as in
// GETINFO net/listeners/*.
func unquoteList(s string) ([]string, error) {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		v, rest, err := unquote(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s = rest
	}
	return out, nil
}

// parseListener turns "unix:/path" or "127.0.0.1:9051" into a dial target.
func parseListener(l string) (network, address string) {
	if p, ok := strings.CutPrefix(l, "unix:"); ok {
		return "unix", p
	}
	return "tcp", l
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
