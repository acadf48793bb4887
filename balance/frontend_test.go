//go:build unix

package balance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/internal/syncbuf"
	"github.com/gotorcon/tor/internal/testtor"
	"github.com/gotorcon/tor/onion"
)

// fakeOnionbalance stands in for onionbalance: it logs in onionbalance's
// format its arguments, the size of the key it reads from /dev/fd/3 and
// the configuration from /dev/fd/4, then runs until SIGTERM (or exits 3
// at once when FAKE_OB_EXIT is set).
const fakeOnionbalance = `#!/bin/sh
ts() { date '+%Y-%m-%d %H:%M:%S,000'; }
echo "$(ts) [WARNING]: Initializing onionbalance (version: fake)..."
echo "$(ts) [INFO]: args: $*"
echo "$(ts) [INFO]: key bytes: $(wc -c < /dev/fd/3 | tr -d ' ')"
while IFS= read -r l; do echo "$(ts) [DEBUG]: config: $l"; done < /dev/fd/4
echo "a raw line, as in a Python traceback" >&2
if [ -n "$FAKE_OB_EXIT" ]; then echo "$(ts) [ERROR]: fake failure"; exit 3; fi
trap 'echo "$(ts) [INFO]: Signal 15 received, exiting"; exit 0' TERM
echo "$(ts) [INFO]: pid $$ running"
while :; do sleep 1 >/dev/null 2>&1 & wait $!; done
`

func writeFake(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "onionbalance")
	require.NoError(t, testtor.WriteExecutable(p, []byte(fakeOnionbalance)))
	return p
}

// fakeTor is a control port that answers what Start asks, as tor 0.4.9.11
// on a tortest network does, and sends events on demand.
type fakeTor struct {
	srv *controltest.Server

	mu         sync.Mutex
	conn       *controltest.Conn
	methods    string // PROTOCOLINFO auth methods
	testnet    string
	validAfter string
	freshUntil string
	hsdirs     int
}

func newFakeTor(t *testing.T) *fakeTor {
	f := &fakeTor{methods: "COOKIE,SAFECOOKIE", testnet: "1", validAfter: "2026-12-01 11:30:47", freshUntil: "2026-12-01 11:31:07", hsdirs: 7}
	f.srv = controltest.NewServer(controltest.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTor) serve(c *controltest.Conn) {
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			return
		}
		f.mu.Lock()
		switch {
		case cmd.Keyword == "PROTOCOLINFO":
			c.Reply("250-PROTOCOLINFO 1", `250-AUTH METHODS=`+f.methods+` COOKIEFILE="/tmp/x/control_auth_cookie"`, `250-VERSION Tor="0.4.9.11"`, "250 OK")
		case cmd.Line == "GETCONF TestingTorNetwork":
			c.Reply("250 TestingTorNetwork=" + f.testnet)
		case cmd.Line == "GETINFO consensus/valid-after consensus/fresh-until":
			c.Reply("250-consensus/valid-after="+f.validAfter, "250-consensus/fresh-until="+f.freshUntil, "250 OK")
		case cmd.Line == "GETINFO ns/all":
			var lines []string
			for i := range f.hsdirs + 1 {
				lines = append(lines, fmt.Sprintf("r n%d AAAA BBBB 2026-12-01 11:30:00 127.0.0.1 5000 0", i))
				if i < f.hsdirs {
					lines = append(lines, "s Fast Guard HSDir Running Stable V2Dir Valid")
				} else {
					lines = append(lines, "s Fast Guard Running Stable Valid")
				}
			}
			c.Reply(append([]string{"250+ns/all="}, append(controltest.DataBlock(strings.Join(lines, "\n")), "250 OK")...)...)
		case cmd.Line == "GETINFO events/names":
			c.Reply("250-events/names=CIRC STREAM HS_DESC HS_DESC_CONTENT STATUS_CLIENT", "250 OK")
		default:
			c.Reply("250 OK")
		}
		f.mu.Unlock()
	}
}

// emit sends event lines.
func (f *fakeTor) emit(lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn.Reply(lines...)
}

type testTor struct {
	conn          *control.Conn
	network, addr string
}

func (t testTor) Control() *control.Conn                 { return t.conn }
func (t testTor) ControlAddr() (network, address string) { return t.network, t.addr }

func (f *fakeTor) tor(t *testing.T) testTor {
	c, err := control.Dial(context.Background(), f.srv.Network, f.srv.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return testTor{conn: c, network: f.srv.Network, addr: f.srv.Addr}
}

// recordedMaster is the master address in the recorded events.
const recordedMaster = "tapigha6k2r5ank5bekl6aaz5pa3shgwnoneni5luddzaxttlnjlicyd"

// hspostEvents returns the HS_DESC lines tor 0.4.9.11 sent while
// onionbalance posted a master descriptor (examples/balance).
func hspostEvents(t *testing.T) []string {
	b, err := os.ReadFile("../testdata/balance/hspost-events-0.4.9.11.txt")
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "650 ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 12)
	return lines
}

func keys(t *testing.T, n int) []*onion.Key {
	ks := make([]*onion.Key, n)
	for i := range ks {
		k, err := onion.GenerateKey(nil)
		require.NoError(t, err)
		ks[i] = k
	}
	return ks
}

// logBuffer collects slog output.
type logBuffer struct{ syncbuf.Buffer }

// waitLog waits until the log matches re and returns the first submatch.
func (l *logBuffer) waitLog(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(l.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never matched %q:\n%s", re, l.String())
	return ""
}

// ours matches the goroutines of this package, except the spawner, which
// lives as long as the program by design.
func ours(stack string) bool {
	return strings.Contains(stack, "created by github.com/gotorcon/tor/balance.") && !strings.Contains(stack, "startCmd")
}

func TestFrontendLifecycle(t *testing.T) {
	f := newFakeTor(t)
	ks := keys(t, 4)
	master, a, b, c := ks[0], ks[1], ks[2], ks[3]
	logs := &logBuffer{}
	fe := &Frontend{
		Key:      master,
		Backends: []string{a.Hostname(), strings.ToUpper(b.ServiceID())},
		Path:     writeFake(t),
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx := context.Background()
	require.NoError(t, fe.Start(ctx, f.tor(t)))
	assert.Equal(t, master.Hostname(), fe.Address())
	assert.Equal(t, []string{a.Hostname(), b.Hostname()}, fe.Backends, "normalised")

	// Arguments, key and configuration as onionbalance sees them.
	args := logs.waitLog(t, `msg="onionbalance: args: ([^"]*)"`)
	host, port, _ := strings.Cut(f.srv.Addr, ":")
	assert.Equal(t, "-c /dev/fd/4 -s  -i "+host+" -p "+port+" --is-testnet -v debug", args)
	assert.Equal(t, "96", logs.waitLog(t, `key bytes: (\d+)`), "tor's hs_ed25519_secret_key through the pipe")
	logs.waitLog(t, `level=DEBUG msg="onionbalance: config: - key: /dev/fd/3"`)
	logs.waitLog(t, `level=DEBUG msg="onionbalance: config:   - address: `+b.Hostname())
	logs.waitLog(t, `level=WARN msg="onionbalance: Initializing onionbalance`)
	logs.waitLog(t, `level=WARN msg="onionbalance: a raw line, as in a Python traceback"`)
	assert.NotContains(t, logs.String(), strings.TrimPrefix(master.Blob(), onion.KeyType+":"), "the key is never logged")
	pid1 := logs.waitLog(t, `pid (\d+) running`)

	// Published at the first upload of the master descriptor, as tor
	// 0.4.9.11 reported onionbalance's HSPOST (recorded events).
	id := master.ServiceID()
	recorded := hspostEvents(t)
	f.emit(strings.ReplaceAll(recorded[0], recordedMaster, a.ServiceID())) // not the master
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := fe.WaitPublished(short)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "another service's upload")
	for _, l := range recorded {
		f.emit(strings.ReplaceAll(l, recordedMaster, id))
	}
	require.NoError(t, fe.WaitPublished(ctx))
	logs.waitLog(t, `level=INFO msg="balance: master descriptor published" address=`+master.Hostname())

	// SetBackends restarts onionbalance; WaitPublished waits for the next
	// upload.
	require.Error(t, fe.SetBackends(ctx, []string{master.Hostname()}), "the master cannot be a backend")
	require.Error(t, fe.SetBackends(ctx, nil))
	require.NoError(t, fe.SetBackends(ctx, []string{b.Hostname(), c.Hostname()}))
	logs.waitLog(t, `config:   - address: `+c.Hostname())
	logs.waitLog(t, `Signal 15 received`)
	assert.False(t, leakcheck.PidAlive(atoi(t, pid1)), "the first onionbalance is gone")
	short, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	require.ErrorIs(t, fe.WaitPublished(short), context.DeadlineExceeded)
	cancel()
	f.emit(strings.ReplaceAll(recorded[3], recordedMaster, id))
	require.NoError(t, fe.WaitPublished(ctx))
	assert.Equal(t, []string{b.Hostname(), c.Hostname()}, fe.Backends)

	pids := regexp.MustCompile(`pid (\d+) running`).FindAllStringSubmatch(logs.String(), -1)
	require.Len(t, pids, 2)
	last := atoi(t, pids[1][1])
	assert.True(t, leakcheck.PidAlive(last))
	require.NoError(t, fe.Close())
	assert.False(t, leakcheck.PidAlive(last), "Close waits until onionbalance has exited")
	<-fe.Done()
	assert.ErrorIs(t, fe.Err(), ErrClosed)
	assert.ErrorIs(t, fe.WaitPublished(ctx), ErrClosed)
	assert.ErrorIs(t, fe.SetBackends(ctx, []string{a.Hostname()}), ErrClosed)
	require.NoError(t, fe.Close(), "idempotent")
	leakcheck.Check(t, 2*time.Second, ours)
}

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

func TestFrontendExits(t *testing.T) {
	t.Setenv("FAKE_OB_EXIT", "1")
	f := newFakeTor(t)
	ks := keys(t, 2)
	fe := &Frontend{Key: ks[0], Backends: []string{ks[1].Hostname()}, Path: writeFake(t)}
	require.NoError(t, fe.Start(context.Background(), f.tor(t)))
	select {
	case <-fe.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after onionbalance exited")
	}
	var ee *ExitError
	require.ErrorAs(t, fe.Err(), &ee)
	assert.Contains(t, ee.Error(), "exit status 3")
	assert.Contains(t, strings.Join(ee.Lines, "\n"), "fake failure")
	assert.ErrorAs(t, fe.WaitPublished(context.Background()), &ee)
	assert.ErrorAs(t, fe.SetBackends(context.Background(), []string{ks[1].Hostname()}), &ee)
	require.NoError(t, fe.Close())
	leakcheck.Check(t, 2*time.Second, ours)
}

func TestFrontendTorGoesAway(t *testing.T) {
	f := newFakeTor(t)
	ks := keys(t, 2)
	logs := &logBuffer{}
	fe := &Frontend{Key: ks[0], Backends: []string{ks[1].Hostname()}, Path: writeFake(t),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	require.NoError(t, fe.Start(context.Background(), f.tor(t)))
	pid := atoi(t, logs.waitLog(t, `pid (\d+) running`))
	f.srv.CloseClients() // as if tor died
	select {
	case <-fe.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the control connection ended")
	}
	assert.ErrorIs(t, fe.Err(), ErrTorClosed)
	leakcheck.WaitPidGone(t, pid, 10*time.Second)
	require.NoError(t, fe.Close())
	leakcheck.Check(t, 2*time.Second, ours)
}

func TestStartRefuses(t *testing.T) {
	ks := keys(t, 2)
	fake := writeFake(t)
	for _, tc := range []struct {
		name  string
		setup func(f *fakeTor, fe *Frontend)
		want  error
		text  string
	}{
		{"no consensus", func(f *fakeTor, fe *Frontend) { f.validAfter, f.freshUntil = "", "" }, ErrNoConsensus, "bootstrap"},
		{"voting interval", func(f *fakeTor, fe *Frontend) { f.freshUntil = "2026-12-01 11:35:47" }, ErrUnsupportedNetwork, "5m0s"},
		{"few HSDirs", func(f *fakeTor, fe *Frontend) { f.hsdirs = 4 }, ErrUnsupportedNetwork, "4 HSDirs"},
		{"password", func(f *fakeTor, fe *Frontend) { f.methods = "HASHEDPASSWORD" }, ErrAuthUnsupported, "HASHEDPASSWORD"},
		{"not installed", func(f *fakeTor, fe *Frontend) { fe.Path = filepath.Join(t.TempDir(), "nothing") }, ErrNotInstalled, "apt-get install onionbalance"},
		{"not on PATH", func(f *fakeTor, fe *Frontend) { fe.Path = "no-such-onionbalance" }, ErrNotInstalled, "no-such-onionbalance"},
		{"bad backend", func(f *fakeTor, fe *Frontend) {
			fe.Backends = []string{"abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefab.onion"}
		}, onion.ErrInvalidAddress, "backend"},
		{"backend twice", func(f *fakeTor, fe *Frontend) { fe.Backends = []string{ks[1].Hostname(), ks[1].ServiceID()} }, nil, "twice"},
		{"no key", func(f *fakeTor, fe *Frontend) { fe.Key = nil }, nil, "Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTor(t)
			fe := &Frontend{Key: ks[0], Backends: []string{ks[1].Hostname()}, Path: fake}
			tc.setup(f, fe)
			err := fe.Start(context.Background(), f.tor(t))
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			assert.Contains(t, err.Error(), tc.text)
			require.NoError(t, fe.Close())
		})
	}
	leakcheck.Check(t, 2*time.Second, ours)

	// A tor that is not on a test network: no --is-testnet, no checks of
	// the voting interval or of the HSDirs.
	f := newFakeTor(t)
	f.testnet, f.freshUntil, f.hsdirs = "0", "2026-12-01 12:30:47", 0
	logs := &logBuffer{}
	fe := &Frontend{Key: ks[0], Backends: []string{ks[1].Hostname()}, Path: fake, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	require.NoError(t, fe.Start(context.Background(), f.tor(t)))
	args := logs.waitLog(t, `msg="onionbalance: args: ([^"]*)"`)
	assert.NotContains(t, args, "--is-testnet")
	assert.Contains(t, args, "-v info")
	require.ErrorContains(t, fe.Start(context.Background(), f.tor(t)), "already started")
	require.NoError(t, fe.Close())
}

func TestControlArgs(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		want          []string
		err           string
	}{
		{"unix", "/run/tor/control", []string{"-s", "/run/tor/control"}, ""},
		{"tcp", "127.0.0.1:9051", []string{"-s", "", "-i", "127.0.0.1", "-p", "9051"}, ""},
		{"tcp", "[::1]:9051", []string{"-s", "", "-i", "::1", "-p", "9051"}, ""},
		{"tcp", "localhost:9051", nil, "IP address"},
		{"tcp", "127.0.0.1", nil, "missing port"},
		{"unix", "", nil, "empty"},
		{"udp", "127.0.0.1:1", nil, "unix socket or a TCP port"},
	} {
		got, err := controlArgs(tc.network, tc.addr)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.addr)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
}

func TestConfigYAML(t *testing.T) {
	ks := keys(t, 3)
	list, err := checkBackends(ks[0], []string{ks[1].ServiceID(), "www." + ks[2].Hostname()})
	require.NoError(t, err)
	assert.Equal(t, "# written by github.com/gotorcon/tor/balance\nservices:\n- key: /dev/fd/3\n  instances:\n"+
		"  - address: "+ks[1].Hostname()+"\n  - address: "+ks[2].Hostname()+"\n", string(configYAML(list)))
}

func TestCountHSDirs(t *testing.T) {
	ns := "r a\ns Fast HSDir Running\nr b\ns Fast Running\nr c\ns HSDir\nr d\ns HSDirX\n"
	assert.Equal(t, 2, countHSDirs(ns))
	assert.Equal(t, 0, countHSDirs(""))
}

func TestVerbosity(t *testing.T) {
	lg := func(l slog.Level) *slog.Logger {
		return slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: l}))
	}
	assert.Equal(t, "debug", verbosity(lg(slog.LevelDebug)))
	assert.Equal(t, "info", verbosity(lg(slog.LevelInfo)))
	assert.Equal(t, "warning", verbosity(lg(slog.LevelWarn)))
	assert.Equal(t, "warning", verbosity(slog.New(slog.DiscardHandler)))
}

func TestEnviron(t *testing.T) {
	t.Setenv("ONIONBALANCE_TOR_CONTROL_SOCKET", "/var/run/tor/control")
	t.Setenv("ONIONBALANCE_STATUS_SOCKET_LOCATION", "/tmp/x")
	env := environ()
	for _, kv := range env {
		assert.False(t, strings.HasPrefix(kv, "ONIONBALANCE_"), kv)
	}
	assert.Contains(t, env, "PYTHONUNBUFFERED=1")
}

func TestExitErrorUnwraps(t *testing.T) {
	base := errors.New("exit status 1")
	e := &ExitError{Err: base, Lines: []string{"a", "b"}}
	assert.ErrorIs(t, e, base)
	assert.Equal(t, "balance: onionbalance exited: exit status 1; its last lines:\n\ta\n\tb", e.Error())
}
