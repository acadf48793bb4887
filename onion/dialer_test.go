package onion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"
)

const testOnion = "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad.onion"

// shortSocketPath returns a unix socket path short enough for every
// platform's limit, removed in t.Cleanup.
func shortSocketPath(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "onion")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func echoRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	msg := []byte("hello through tor")
	_, err := c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, got)
}

func TestDialHostNameIsNotResolvedLocally(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	d := s.dialer()
	for _, host := range []string{testOnion, "www." + testOnion, "example.com", "no-such-name.invalid", "localhost"} {
		c, err := d.DialContext(testCtx(t), "tcp", net.JoinHostPort(host, "80"))
		require.NoError(t, err, host)
		echoRoundTrip(t, c)
		c.Close()
		reqs := s.requests()
		r := reqs[len(reqs)-1]
		assert.Equal(t, byte(cmdConnect), r.Cmd)
		assert.Equal(t, byte(atypDomain), r.Atyp, "%s must go to tor as a name", host)
		assert.Equal(t, host, r.Host)
		assert.Equal(t, uint16(80), r.Port)
		assert.Equal(t, []byte{authNone}, r.Methods)
		assert.False(t, r.HasAuth)
	}
}

func TestDialIPLiterals(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	d := s.dialer()
	for _, c := range []struct {
		addr string
		atyp byte
		ip   string
		port uint16
	}{
		{"192.0.2.7:443", atypIPv4, "192.0.2.7", 443},
		{"[2001:db8::1]:8080", atypIPv6, "2001:db8::1", 8080},
		{"[::ffff:192.0.2.9]:1", atypIPv4, "192.0.2.9", 1},
		{"[::1]:65535", atypIPv6, "::1", 65535},
	} {
		conn, err := d.DialContext(testCtx(t), "tcp6", c.addr)
		require.NoError(t, err, c.addr)
		conn.Close()
		reqs := s.requests()
		r := reqs[len(reqs)-1]
		assert.Equal(t, c.atyp, r.Atyp, c.addr)
		assert.Equal(t, netip.MustParseAddr(c.ip), r.IP, c.addr)
		assert.Equal(t, c.port, r.Port, c.addr)
	}
}

func TestDialEveryReplyCode(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	s.answer = func(r socksRequest) socksAnswer { return socksAnswer{Code: ReplyCode(r.Port)} }
	d := s.dialer()
	codes := []ReplyCode{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x7F,
		0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xFE}
	for _, code := range codes {
		addr := fmt.Sprintf("%s:%d", testOnion, code)
		c, err := d.DialContext(testCtx(t), "tcp", addr)
		require.Error(t, err, "code %#x", code)
		assert.Nil(t, c)

		var se *SOCKSError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, code, se.Code)
		assert.Equal(t, "connect", se.Cmd)
		assert.Equal(t, addr, se.Addr)
		assert.ErrorIs(t, err, code)
		assert.NotErrorIs(t, err, code+1)
		onion := code >= 0xF0 && code <= 0xF7
		assert.Equal(t, onion, errors.Is(err, ErrOnionService), "code %#x", code)
		assert.Equal(t, onion, code.IsOnionService())

		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "dial", oe.Op)
		assert.Equal(t, addr, oe.Addr.String())
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, code == ReplyTTLExpired || code == ReplyOnionIntroTimedOut, ne.Timeout(), "code %#x", code)
		assert.Contains(t, err.Error(), fmt.Sprintf("0x%02X", byte(code)))
	}
	assert.Len(t, s.requests(), len(codes))
	assert.Contains(t, ReplyOnionMissingClientAuth.Error(), "missing client authorization")
	assert.Equal(t, "onion service descriptor can not be found (0xF0)", ReplyOnionDescNotFound.String())
	assert.True(t, (&SOCKSError{Code: ReplyOnionDescNotFound}).Temporary())
	assert.False(t, (&SOCKSError{Code: ReplyOnionMissingClientAuth}).Temporary())
}

func TestDialAuthentication(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	s.requireAuth = true

	// Without credentials a server that insists on them refuses us.
	_, err := s.dialer().DialContext(testCtx(t), "tcp", "example.com:80")
	assert.ErrorIs(t, err, ErrSOCKSAuth)

	d := s.dialer()
	d.Username, d.Password = "user", "pass"
	c, err := d.DialContext(testCtx(t), "tcp", "example.com:80")
	require.NoError(t, err)
	echoRoundTrip(t, c)
	c.Close()
	reqs := s.requests()
	r := reqs[len(reqs)-1]
	assert.Equal(t, []byte{authPassword}, r.Methods, "only username/password is offered, so isolation cannot be lost")
	assert.Equal(t, "user", r.User)
	assert.Equal(t, "pass", r.Pass)

	// A username alone (empty password) is allowed by tor.
	d.Password = ""
	c, err = d.DialContext(testCtx(t), "tcp", "example.com:80")
	require.NoError(t, err)
	c.Close()

	s.rejectPass = "wrong"
	d.Password = "wrong"
	_, err = d.DialContext(testCtx(t), "tcp", "example.com:80")
	assert.ErrorIs(t, err, ErrSOCKSAuth)

	// A server that ignores our offer and picks "no authentication".
	liar := rawServer(t, func(c net.Conn) {
		io.ReadFull(c, make([]byte, 3))
		c.Write([]byte{5, 0})
	})
	liar.Username, liar.Password = "u", "p"
	_, err = liar.DialContext(testCtx(t), "tcp", "example.com:80")
	assert.ErrorIs(t, err, ErrSOCKSProtocol)
}

func TestIsolated(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	base := s.dialer()
	a, b := base.Isolated(), base.Isolated()
	assert.Empty(t, base.Username)
	assert.NotEmpty(t, a.Username)
	assert.NotEqual(t, a.Username, b.Username)
	assert.Equal(t, base.ProxyAddress, a.ProxyAddress)
	for _, d := range []*Dialer{a, b, a} {
		c, err := d.DialContext(testCtx(t), "tcp", "example.com:80")
		require.NoError(t, err)
		c.Close()
	}
	reqs := s.requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, reqs[0].User, reqs[2].User)
	assert.NotEqual(t, reqs[0].User, reqs[1].User)
	assert.True(t, reqs[0].HasAuth)
}

func TestDialProtocolErrors(t *testing.T) {
	for name, h := range map[string]func(c net.Conn){
		"not socks": func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) },
		"socks4 reply": func(c net.Conn) {
			io.ReadFull(c, make([]byte, 3))
			c.Write([]byte{5, 0})
			io.ReadFull(c, make([]byte, 7+len("example.com")))
			c.Write([]byte{0, 0x5a, 0, 0, 0, 0, 0, 0})
		},
		"close after greeting": func(c net.Conn) { io.ReadFull(c, make([]byte, 3)) },
		"close after method": func(c net.Conn) {
			io.ReadFull(c, make([]byte, 3))
			c.Write([]byte{5, 0})
		},
		"short reply": func(c net.Conn) {
			io.ReadFull(c, make([]byte, 3))
			c.Write([]byte{5, 0})
			io.ReadFull(c, make([]byte, 7+len("example.com")))
			c.Write([]byte{5, 0, 0, 1, 127})
		},
		"unknown address type": func(c net.Conn) {
			io.ReadFull(c, make([]byte, 3))
			c.Write([]byte{5, 0})
			io.ReadFull(c, make([]byte, 7+len("example.com")))
			c.Write([]byte{5, 0, 0, 9, 0, 0, 0, 0, 0, 0})
		},
		"method not offered": func(c net.Conn) {
			io.ReadFull(c, make([]byte, 3))
			c.Write([]byte{5, 2})
		},
	} {
		d := rawServer(t, h)
		_, err := d.DialContext(testCtx(t), "tcp", "example.com:80")
		assert.ErrorIs(t, err, ErrSOCKSProtocol, name)
		var oe *net.OpError
		assert.ErrorAs(t, err, &oe, name)
	}

	// Nothing listening: the error says so.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := NewDialer(addr).DialContext(testCtx(t), "tcp", "example.com:80")
	require.Error(t, err)
	assert.ErrorContains(t, err, "SOCKS port")
	if runtime.GOOS != "windows" {
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	}
}

func TestDialBadArguments(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	d := s.dialer()
	for _, c := range []struct{ network, addr string }{
		{"udp", "example.com:53"},
		{"unix", "/tmp/x"},
		{"tcp", "example.com"},
		{"tcp", "example.com:http"},
		{"tcp", "example.com:65536"},
		{"tcp", "example.com:-1"},
		{"tcp", ":80"},
		{"tcp", strings.Repeat("a", 256) + ":80"},
		{"tcp", "exa mple.com:80"},
		{"tcp", "exa\x00mple.com:80"},
		{"tcp", "[fe80::1%eth0]:80"},
	} {
		_, err := d.DialContext(testCtx(t), c.network, c.addr)
		assert.Error(t, err, "%s %q", c.network, c.addr)
	}
	long := *d
	long.Username = strings.Repeat("u", 256)
	_, err := long.DialContext(testCtx(t), "tcp", "example.com:80")
	assert.Error(t, err)
	nouser := *d
	nouser.Password = "p"
	_, err = nouser.DialContext(testCtx(t), "tcp", "example.com:80")
	assert.Error(t, err)
	_, err = (&Dialer{}).DialContext(testCtx(t), "tcp", "example.com:80")
	assert.ErrorContains(t, err, "ProxyAddress")
	assert.Equal(t, 0, s.connCount(), "nothing was sent for bad arguments")

	// 255 bytes is the most a SOCKS5 name can hold.
	c, err := d.DialContext(testCtx(t), "tcp", strings.Repeat("a", 255)+":80")
	require.NoError(t, err)
	c.Close()
}

func TestDialContext(t *testing.T) {
	hang := make(chan struct{})
	s := newFakeSOCKS(t, "tcp")
	t.Cleanup(func() { close(hang) }) // runs before the server's cleanup
	s.answer = func(r socksRequest) socksAnswer {
		if r.Host == "hang.example" {
			<-hang
		}
		return socksAnswer{}
	}
	d := s.dialer()

	// Cancelled while tor is working: returns at once with ctx's error.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := d.DialContext(ctx, "tcp", "hang.example:80")
		errc <- err
	}()
	waitFor(t, func() bool { return len(s.requests()) == 1 })
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 5*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("DialContext did not return after cancel")
	}

	// Deadline while tor is working.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := d.DialContext(ctx, "tcp", "hang.example:80")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	// Already cancelled: nothing is dialled.
	n := s.connCount()
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = d.DialContext(ctx, "tcp", "example.com:80")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, n, s.connCount())

	// After a successful dial the context's deadline no longer applies to
	// the connection.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", "example.com:80")
	require.NoError(t, err)
	defer c.Close()
	<-ctx.Done()
	echoRoundTrip(t, c)
}

func TestResolve(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	s.answer = func(r socksRequest) socksAnswer {
		switch {
		case r.Cmd == cmdResolve && r.Host == "v4.example":
			return socksAnswer{IP: netip.MustParseAddr("192.0.2.1")}
		case r.Cmd == cmdResolve && r.Host == "v6.example":
			return socksAnswer{IP: netip.MustParseAddr("2001:db8::2")}
		case r.Cmd == cmdResolve && r.Host == "name.example":
			return socksAnswer{Atyp: atypDomain, Host: "x"}
		case r.Cmd == cmdResolvePTR && r.IP == netip.MustParseAddr("192.0.2.1"):
			return socksAnswer{Atyp: atypDomain, Host: "v4.example"}
		case r.Cmd == cmdResolvePTR && r.IP == netip.MustParseAddr("2001:db8::2"):
			return socksAnswer{Atyp: atypDomain, Host: "v6.example"}
		case r.Cmd == cmdResolvePTR && r.IP == netip.MustParseAddr("192.0.2.3"):
			return socksAnswer{IP: netip.MustParseAddr("192.0.2.3")}
		}
		return socksAnswer{Code: ReplyHostUnreachable}
	}
	d := s.dialer().Isolated()
	ip, err := d.Resolve(testCtx(t), "v4.example")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("192.0.2.1"), ip)
	ip, err = d.Resolve(testCtx(t), "v6.example")
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("2001:db8::2"), ip)

	_, err = d.Resolve(testCtx(t), "nx.example")
	assert.ErrorIs(t, err, ReplyHostUnreachable)
	var se *SOCKSError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "resolve", se.Cmd)
	_, err = d.Resolve(testCtx(t), "name.example")
	assert.ErrorIs(t, err, ErrSOCKSProtocol)
	_, err = d.Resolve(testCtx(t), "")
	assert.Error(t, err)

	name, err := d.ResolvePTR(testCtx(t), netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "v4.example", name)
	name, err = d.ResolvePTR(testCtx(t), netip.MustParseAddr("2001:db8::2"))
	require.NoError(t, err)
	assert.Equal(t, "v6.example", name)
	_, err = d.ResolvePTR(testCtx(t), netip.MustParseAddr("192.0.2.99"))
	assert.ErrorIs(t, err, ReplyHostUnreachable)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "resolve_ptr", se.Cmd)
	_, err = d.ResolvePTR(testCtx(t), netip.MustParseAddr("192.0.2.3"))
	assert.ErrorIs(t, err, ErrSOCKSProtocol)
	_, err = d.ResolvePTR(testCtx(t), netip.Addr{})
	assert.Error(t, err)

	reqs := s.requests()
	assert.Equal(t, byte(cmdResolve), reqs[0].Cmd)
	assert.Equal(t, byte(atypDomain), reqs[0].Atyp)
	assert.Equal(t, uint16(0), reqs[0].Port)
	for _, r := range reqs {
		assert.True(t, r.HasAuth, "resolution is isolated like connections")
	}
	ptr := reqs[4]
	assert.Equal(t, byte(cmdResolvePTR), ptr.Cmd)
	assert.Equal(t, byte(atypIPv4), ptr.Atyp)
}

func TestNewDialer(t *testing.T) {
	for in, want := range map[string][2]string{
		"127.0.0.1:9050":      {"tcp", "127.0.0.1:9050"},
		`"127.0.0.1:9050"`:    {"tcp", "127.0.0.1:9050"},
		"[::1]:9050":          {"tcp", "[::1]:9050"},
		"unix:/run/tor/socks": {"unix", "/run/tor/socks"},
		`"unix:/a b/socks"`:   {"unix", "/a b/socks"},
	} {
		d := NewDialer(in)
		assert.Equal(t, want, [2]string{d.ProxyNetwork, d.ProxyAddress}, in)
	}
}

func TestDialUnixSocksPort(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix sockets")
	}
	s := newFakeSOCKS(t, "unix")
	d := NewDialer("unix:" + s.ln.Addr().String())
	c, err := d.DialContext(testCtx(t), "tcp", testOnion+":80")
	require.NoError(t, err)
	echoRoundTrip(t, c)
	c.Close()
	// Dial without a context works too.
	c, err = d.Dial("tcp", testOnion+":80")
	require.NoError(t, err)
	c.Close()
}

// The Dialer is an x/net/proxy dialer, usable wherever one is, including
// as the forward dialer of another x/net/proxy dialer.
func TestXNetProxyInterop(t *testing.T) {
	s := newFakeSOCKS(t, "tcp")
	var pd proxy.Dialer = s.dialer()
	c, err := pd.Dial("tcp", "example.com:80")
	require.NoError(t, err)
	echoRoundTrip(t, c)
	c.Close()

	// Our Forward field takes x/net/proxy dialers (proxy.Direct here).
	d := s.dialer()
	d.Forward = proxy.Direct
	c, err = d.DialContext(testCtx(t), "tcp", "example.com:80")
	require.NoError(t, err)
	c.Close()

	// x/net/proxy's own SOCKS5 client agrees with our fake server, which
	// checks the fake against an independent implementation.
	xd, err := proxy.SOCKS5("tcp", s.ln.Addr().String(), &proxy.Auth{User: "u", Password: "p"}, proxy.Direct)
	require.NoError(t, err)
	c, err = xd.(proxy.ContextDialer).DialContext(testCtx(t), "tcp", testOnion+":443")
	require.NoError(t, err)
	echoRoundTrip(t, c)
	c.Close()
	reqs := s.requests()
	r := reqs[len(reqs)-1]
	assert.Equal(t, testOnion, r.Host)
	assert.Equal(t, uint16(443), r.Port)
	assert.Equal(t, "u", r.User)
}

func TestHTTPClientThroughTor(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s path=%s", r.Host, r.URL.Path)
	}))
	defer web.Close()
	var trapped atomic.Int32
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trapped.Add(1)
		http.Error(w, "proxy from the environment was used", http.StatusTeapot)
	}))
	defer trap.Close()
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(v, trap.URL)
	}
	t.Setenv("NO_PROXY", "")

	s := newFakeSOCKS(t, "tcp")
	s.answer = func(r socksRequest) socksAnswer {
		return socksAnswer{Serve: func(c net.Conn) {
			// Play the exit: connect wherever the test web server is.
			w, err := net.Dial("tcp", web.Listener.Addr().String())
			if err != nil {
				return
			}
			defer w.Close()
			go io.Copy(w, c)
			io.Copy(c, w)
		}}
	}
	client := s.dialer().HTTPClient()
	defer client.CloseIdleConnections()
	for _, u := range []string{"http://" + testOnion + "/a", "http://no-such-name.invalid/b"} {
		resp, err := client.Get(u)
		require.NoError(t, err, u)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		host := strings.TrimPrefix(u, "http://")
		host = host[:strings.IndexByte(host, '/')]
		assert.Equal(t, "host="+host+" path="+u[len("http://")+len(host):], string(body))
	}
	assert.Zero(t, trapped.Load(), "HTTP_PROXY from the environment must be ignored")
	reqs := s.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, testOnion, reqs[0].Host)
	assert.Equal(t, "no-such-name.invalid", reqs[1].Host, "the name went to tor unresolved")
	assert.Nil(t, client.Transport.(*http.Transport).Proxy)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
