package onion

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tor048AddOnion answers ADD_ONION like tor 0.4.8, which has the PoW
// defense for on-disk services only: its ADD_ONION refuses the PoW
// keywords.
func tor048AddOnion(c *controltest.Conn, cmd *controltest.Command) {
	for _, kw := range []string{"PoWDefensesEnabled", "PoWQueueRate", "PoWQueueBurst"} {
		if strings.Contains(cmd.Args, " "+kw+"=") {
			c.Reply(`512 Bad arguments to ADD_ONION: Unrecognized keyword argument "` + kw + `"`)
			return
		}
	}
	c.Reply(okReply...)
}

func bufLogger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestListenPoWFallbackOnTor048(t *testing.T) {
	t.Run("auto falls back with a notice", func(t *testing.T) {
		f := newFakeTor(t)
		f.addOnion = tor048AddOnion
		log, buf := bufLogger()
		l, err := (&ListenConfig{Wait: WaitNone, Logger: log}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		defer l.Close()
		assert.False(t, l.PoW(), "published without PoW")
		var adds []string
		for _, line := range f.commands() {
			if strings.HasPrefix(line, "ADD_ONION ") {
				adds = append(adds, line)
			}
		}
		require.Len(t, adds, 2, "one try with PoW, one without")
		assert.Contains(t, adds[0], " PoWDefensesEnabled=1 ")
		assert.NotContains(t, adds[1], "PoW")
		assert.Contains(t, buf.String(), "without the proof-of-work defense")
	})
	t.Run("on fails", func(t *testing.T) {
		f := newFakeTor(t)
		f.addOnion = tor048AddOnion
		_, err := (&ListenConfig{Wait: WaitNone, PoW: PoW{Mode: PoWOn, QueueRate: 5, QueueBurst: 50}}).Listen(testCtx(t), f.dial(t))
		require.ErrorIs(t, err, ErrPoWUnsupported)
		assert.ErrorIs(t, err, control.ErrArgumentSyntax, "tor's error is kept")
		assert.Equal(t, 1, f.count("ADD_ONION"), "no second try")
		assert.Equal(t, 0, f.count("DEL_ONION"), "nothing was created")
	})
	t.Run("off sends nothing", func(t *testing.T) {
		f := newFakeTor(t)
		f.addOnion = tor048AddOnion
		l, err := (&ListenConfig{Wait: WaitNone, PoW: PoW{Mode: PoWOff}}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		defer l.Close()
		assert.Equal(t, 1, f.count("ADD_ONION"))
		assert.False(t, l.PoW())
	})
	t.Run("other errors are not retried", func(t *testing.T) {
		f := newFakeTor(t)
		f.addOnion = replyThen([]string{"512 Invalid PoWQueueRate"})
		_, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), f.dial(t))
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrPoWUnsupported)
		assert.Equal(t, 1, f.count("ADD_ONION"))
	})
}

// TestDirConfigPoWFallback: a tor built without the pow module refuses a
// service with HiddenServicePoWDefensesEnabled 1 (tor's
// config_validate_service: "... this build of tor does not include the
// required 'pow' module", 513 to SETCONF).
func TestDirConfigPoWFallback(t *testing.T) {
	noPoW := func(f *fakeTor) {
		inner := f.other
		f.other = func(c *controltest.Conn, cmd *controltest.Command) bool {
			if cmd.Keyword == "SETCONF" && strings.Contains(cmd.Args, "HiddenServicePoWDefensesEnabled") {
				c.Reply("513 Unacceptable option value: Failed to configure rendezvous options. See logs for details.")
				return true
			}
			return inner(c, cmd)
		}
	}
	t.Run("auto", func(t *testing.T) {
		dir := t.TempDir() + "/svc"
		f, services := newDirFakeTor(t, dir, nil)
		noPoW(f)
		k, _ := GenerateKey(nil)
		log, buf := bufLogger()
		l, err := (&DirConfig{Dir: dir, Key: k, Wait: WaitNone, Logger: log}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		assert.False(t, l.PoW())
		assert.Contains(t, buf.String(), "without the proof-of-work defense")
		assert.Contains(t, services(), "250-HiddenServiceDir="+dir)
		require.NoError(t, l.Close())
	})
	t.Run("tor 0.4.7 does not know the options", func(t *testing.T) {
		dir := t.TempDir() + "/svc"
		f, services := newDirFakeTorNames(t, dir, nil, func(name string) bool { return strings.Contains(name, "PoW") })
		k, _ := GenerateKey(nil)
		log, buf := bufLogger()
		l, err := (&DirConfig{Dir: dir, Key: k, Wait: WaitNone, Logger: log}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		assert.False(t, l.PoW())
		assert.Contains(t, buf.String(), "unknown option")
		assert.Equal(t, 1, f.count("SETCONF"), "refused before anything reached tor")
		assert.Contains(t, services(), "250-HiddenServiceDir="+dir)
		require.NoError(t, l.Close())

		_, err = (&DirConfig{Dir: dir, Key: k, Wait: WaitNone, PoW: PoW{Mode: PoWOn}}).Listen(testCtx(t), f.dial(t))
		require.ErrorIs(t, err, ErrPoWUnsupported)
		assert.NotContains(t, services(), "250-HiddenServiceDir="+dir)
	})
	t.Run("on", func(t *testing.T) {
		dir := t.TempDir() + "/svc"
		f, services := newDirFakeTor(t, dir, nil)
		noPoW(f)
		k, _ := GenerateKey(nil)
		_, err := (&DirConfig{Dir: dir, Key: k, Wait: WaitNone, PoW: PoW{Mode: PoWOn}}).Listen(testCtx(t), f.dial(t))
		require.ErrorIs(t, err, ErrPoWUnsupported)
		assert.NotContains(t, services(), "250-HiddenServiceDir="+dir, "the service tried without PoW was removed")
	})
}

func TestDirConfigLimits(t *testing.T) {
	dir := t.TempDir() + "/svc"
	f, services := newDirFakeTor(t, dir, nil)
	k, _ := GenerateKey(nil)
	l, err := (&DirConfig{Dir: dir, Key: k, Wait: WaitNone, IntroPoints: 10, IntroDoS: &IntroDoS{Rate: 5, Burst: 50},
		ExportCircuitID: true, PoW: PoW{QueueRate: 100, QueueBurst: 1000}}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	defer l.Close()
	got := strings.Join(services(), "\n")
	for _, want := range []string{
		"HiddenServiceNumIntroductionPoints=10",
		"HiddenServiceEnableIntroDoSDefense=1", "HiddenServiceEnableIntroDoSRatePerSec=5", "HiddenServiceEnableIntroDoSBurstPerSec=50",
		"HiddenServiceExportCircuitID=haproxy",
		"HiddenServicePoWDefensesEnabled=1", "HiddenServicePoWQueueRate=100", "HiddenServicePoWQueueBurst=1000",
	} {
		assert.Contains(t, got, "250-"+want)
	}
	assert.True(t, l.PoW())
}

func TestDefenseBadConfig(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	for name, lc := range map[string]ListenConfig{
		"mode":           {PoW: PoW{Mode: 7}},
		"negative rate":  {PoW: PoW{QueueRate: -1}},
		"rate too big":   {PoW: PoW{QueueRate: 1 << 31}},
		"burst < rate":   {PoW: PoW{QueueRate: 10, QueueBurst: 5}},
		"rate > default": {PoW: PoW{QueueRate: 3000}},
		"off with rate":  {PoW: PoW{Mode: PoWOff, QueueRate: 5}},
	} {
		_, err := lc.Listen(testCtx(t), conn)
		assert.Error(t, err, name)
	}
	assert.Equal(t, 0, f.count("ADD_ONION"), "nothing reaches tor")
	dir := t.TempDir()
	for name, dc := range map[string]DirConfig{
		"intro points 2":  {IntroPoints: 2},
		"intro points 21": {IntroPoints: 21},
		"dos burst<rate":  {IntroDoS: &IntroDoS{Rate: 10, Burst: 5}},
		"dos rate 300":    {IntroDoS: &IntroDoS{Rate: 300}},
		"dos negative":    {IntroDoS: &IntroDoS{Burst: -1}},
		"pow burst<rate":  {PoW: PoW{QueueRate: 10, QueueBurst: 5}},
	} {
		dc.Dir = dir
		_, err := dc.Listen(testCtx(t), conn)
		assert.Error(t, err, name)
	}
	assert.Equal(t, 0, f.count("SETCONF"), "nothing reaches tor")
}

func TestParseProxyHeader(t *testing.T) {
	for line, want := range map[string]ProxyHeader{
		// Captured from tor 0.4.9.11 (circuit 16, virtual port 81).
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81\r\n": {CircuitID: "16", VirtPort: 81},
		// An ID above 16 bits; the older form without "::".
		"PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 2 443\r\n":        {CircuitID: "65538", VirtPort: 443},
		"PROXY TCP6 fc00:dead:beef:4dad:ffff:ffff ::1 65535 1\r\n": {CircuitID: "4294967295", VirtPort: 1},
		"PROXY TCP6 fc00:dead:beef:4dad::1:0 ::1 0 80\r\n":         {CircuitID: "65536", VirtPort: 80},
	} {
		got, err := ParseProxyHeader(line)
		require.NoError(t, err, line)
		assert.Equal(t, want, got, line)
	}
	for _, line := range []string{
		"",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81",
		"PROXY TCP4 1.2.3.4 5.6.7.8 16 81\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY TCP6 fc00:dead:beef:4dae::0:10 ::1 16 81\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::2 16 81\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 17 81\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:0 ::1 1 81\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::10000:10 ::1 16 81\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 65536\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81 x\r\n",
		"PROXY TCP6 fc00:dead:beef:4dad::0:10  ::1 16 81\r\n",
		"GET / HTTP/1.1\r\n",
	} {
		_, err := ParseProxyHeader(line)
		assert.ErrorIs(t, err, ErrProxyHeader, "%q", line)
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	f.Add("PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81\r\n")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseProxyHeader(line)
		if err != nil {
			return
		}
		// A header we accept names a non-zero 32-bit circuit and a port.
		if h.CircuitID == "" || h.CircuitID == "0" || h.VirtPort < 0 || h.VirtPort > 65535 {
			t.Fatalf("%q gave %+v", line, h)
		}
	})
}

func TestCircuitConnStripsHeader(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		b.Write([]byte("PROXY TCP6 fc00:dead:beef:4dad::0:2a ::1 42 80\r\nhello"))
		b.Close()
	}()
	c := newCircuitConn(a)
	body, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(body), "the application sees the client's bytes only")
	id, err := c.CircuitID()
	require.NoError(t, err)
	assert.Equal(t, "42", id)

	// No header: Read fails rather than pass tor's line to the
	// application; a read deadline bounds the wait for it.
	a2, b2 := net.Pipe()
	defer b2.Close()
	c2 := newCircuitConn(a2)
	go b2.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	_, err = c2.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrProxyHeader)
	a3, b3 := net.Pipe()
	defer b3.Close()
	c3 := newCircuitConn(a3)
	c3.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c3.CircuitID()
	assert.ErrorIs(t, err, timeoutErr(t, err))
}

// timeoutErr returns err if it is a timeout, failing t otherwise.
func timeoutErr(t *testing.T, err error) error {
	t.Helper()
	var ne net.Error
	if !assert.ErrorAs(t, err, &ne) || !assert.True(t, ne.Timeout()) {
		return nil
	}
	return err
}

func TestListenerCloseCircuit(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.CloseCircuit(testCtx(t), "16"))
	assert.Equal(t, 1, f.count("CLOSECIRCUIT 16"))
	assert.Error(t, l.CloseCircuit(testCtx(t), "16\r\nSIGNAL HALT"))
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.ErrorContains(t, l.CloseClient(testCtx(t), a), "ExportCircuitID")
	go b.Write([]byte("PROXY TCP6 fc00:dead:beef:4dad::0:11 ::1 17 80\r\n"))
	require.NoError(t, l.CloseClient(testCtx(t), newCircuitConn(a)))
	assert.Equal(t, 1, f.count("CLOSECIRCUIT 17"))
}

// TestListenPoWFallbackTranscript plays a whole Listen against a recorded
// tor 0.4.8 session: try with PoW, fall back, wait for publication, and
// remove the service on Close.
func TestListenPoWFallbackTranscript(t *testing.T) {
	srv, _ := controltest.NewTranscriptServer(t, "../testdata/onion/pow-fallback-tor-0.4.8.txt")
	conn, err := control.Dial(testCtx(t), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer conn.Close()
	log, buf := bufLogger()
	l, err := (&ListenConfig{Logger: log}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	assert.False(t, l.PoW())
	assert.Equal(t, fakeID, l.ServiceID())
	assert.Contains(t, buf.String(), "level=INFO")
	require.NoError(t, l.Close())
}

func TestListenerRendezvousCircuits(t *testing.T) {
	f := newFakeTor(t)
	// Lines as tor 0.4.9.11 writes them (the CIRC event grammar).
	status := []string{
		"4 BUILT $AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0,$15908558F95E2C0269F3DBBFEDBA871DA6BF80BA~relay1 BUILD_FLAGS=IS_INTERNAL,NEED_UPTIME PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_ESTABLISHED REND_QUERY=" + fakeID + " TIME_CREATED=2026-12-01T11:11:09.496453",
		"16 BUILT $AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0,$15908558F95E2C0269F3DBBFEDBA871DA6BF80BA~relay1 BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=" + fakeID + " TIME_CREATED=2026-12-01T11:11:11.611526",
		"17 EXTENDED $AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0 BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_CONNECTING REND_QUERY=" + fakeID + " TIME_CREATED=2026-12-01T11:11:11.611526",
		"18 BUILT $AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0 BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=pqmrc255poisz5fv5d2ebhsw7nkzn5zr5b3mqqzccnal7kxrh5lnokyd TIME_CREATED=2026-12-01T11:11:11.611526",
		"19 BUILT $AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0 BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=" + fakeID + " TIME_CREATED=2026-12-01T11:11:12.611526",
	}
	f.other = func(c *controltest.Conn, cmd *controltest.Command) bool {
		if cmd.Line != "GETINFO circuit-status" {
			return false
		}
		c.Reply(append(append([]string{"250+circuit-status="}, controltest.DataBlock(strings.Join(status, "\n"))...), "250 OK")...)
		return true
	}
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	defer l.Close()
	ids, err := l.RendezvousCircuits(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"16", "19"}, ids, "built rendezvous circuits of this service only")
}
