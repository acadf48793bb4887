package tor_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/process"
)

// TestStartOfflineConfigSaveClose runs the façade against a real tor with
// its network off: control, a configuration change applied and saved into
// the torrc we launched with, and a Close that leaves nothing behind.
func TestStartOfflineConfigSaveClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tr, err := tor.Start(ctx, &tor.Options{NoNetwork: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })

	version, err := tr.Control().GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(version, "0.4."), "version %q", version)

	cfg, err := tr.Config(ctx)
	require.NoError(t, err)
	again, err := tr.Config(ctx)
	require.NoError(t, err)
	assert.Same(t, cfg, again, "Config loads once")

	require.NoError(t, cfg.Set("ContactInfo", "gotorcon façade test \"quoted\" # hash"))
	require.NoError(t, cfg.Apply(ctx))
	require.NoError(t, cfg.Save(ctx, config.SaveOptions{}), "our own torrc may be saved into")

	p := tr.Launched().Process()
	require.NotNil(t, p)
	saved, err := os.ReadFile(p.TorrcPath())
	require.NoError(t, err)
	parsed, err := config.ParseTorrc(saved)
	require.NoError(t, err)
	v, ok := parsed.Get("ContactInfo")
	assert.True(t, ok, "SAVECONF wrote ContactInfo:\n%s", saved)
	assert.Equal(t, "gotorcon façade test \"quoted\" # hash", v)

	// An on-disk service: tor writes its key into the directory.
	keyDir := filepath.Join(t.TempDir(), "service")
	l, err := tr.ListenDir(ctx, &onion.DirConfig{Dir: keyDir, Wait: onion.WaitNone})
	require.NoError(t, err)
	h, err := onion.ReadHostname(keyDir)
	require.NoError(t, err)
	assert.Equal(t, h, l.Hostname())
	require.NoError(t, l.Close())
	_, err = tr.ListenDir(ctx, nil)
	assert.Error(t, err)

	// Dialing needs a SOCKS port, which tor does not open with its network
	// disabled; the error must say so rather than hang.
	_, err = tr.Dial(ctx, "tcp", "example.onion:80")
	assert.Error(t, err)

	pid, dir := p.Pid(), p.DataDir()
	require.NoError(t, tr.Close())
	require.NoError(t, tr.Close(), "Close is idempotent")
	_, err = tr.Config(ctx)
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = tr.ListenDir(ctx, &onion.DirConfig{Dir: keyDir})
	assert.ErrorIs(t, err, net.ErrClosed)
	leakcheck.WaitPidGone(t, pid, 5*time.Second)
	_, err = os.Stat(dir)
	assert.True(t, errors.Is(err, os.ErrNotExist), "data dir %s left behind", dir)
	leakcheck.Check(t, 3*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor", "os/exec."))
}

func TestStartBadMode(t *testing.T) {
	_, err := tor.Start(context.Background(), &tor.Options{Mode: tor.Mode(42)})
	assert.ErrorContains(t, err, "unknown Mode")
}

// wedgedTor is a fake system tor that authenticates anyone and then never
// answers another command, as a wedged tor would.
func wedgedTor(t *testing.T) *controltest.Server {
	srv := controltest.NewServer(controltest.HandlerFunc(func(c *controltest.Conn) {
		for {
			cmd, err := c.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Keyword {
			case "PROTOCOLINFO":
				c.Reply(`250-PROTOCOLINFO 1`, `250-AUTH METHODS=NULL`, `250-VERSION Tor="0.4.9.11"`, `250 OK`)
			case "AUTHENTICATE":
				c.Reply("250 OK")
			default: // wedged: read on, answer nothing
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestCloseWhileWedged: round trips stuck on a tor that does not answer
// (Config, a Dialer, an HTTP request, a Listen) hold no lock that Close
// needs; Close returns at once and they fail with an error.
func TestCloseWhileWedged(t *testing.T) {
	srv := wedgedTor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := tor.Start(ctx, &tor.Options{Mode: tor.System, NoNetwork: true, System: launch.SystemOptions{
		Endpoints: []launch.Endpoint{{Network: srv.Network, Address: srv.Addr}},
	}})
	require.NoError(t, err)

	errs := make(chan error, 4)
	go func() { _, err := tr.Config(ctx); errs <- err }()
	go func() { _, err := tr.Dialer(ctx); errs <- err }()
	go func() {
		resp, err := tr.HTTPClient().Get("http://example.onion/")
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	go func() { _, err := tr.Listen(ctx, 80); errs <- err }()
	time.Sleep(200 * time.Millisecond) // let them reach the wedged tor (not needed for correctness)

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- tr.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind a stuck round trip")
	}
	t.Logf("Close returned in %v", time.Since(start))
	for range 4 {
		select {
		case err := <-errs:
			assert.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a round trip on the wedged tor did not end after Close")
		}
	}
	srv.Close()
	leakcheck.Check(t, 3*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor"))
}

// TestDataDirInUse: a second tor on the directory of a running one gets a
// clear error, and the first keeps running.
func TestDataDirInUse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "state")
	first, err := tor.Start(ctx, &tor.Options{DataDir: dir, NoNetwork: true})
	require.NoError(t, err)
	defer first.Close()
	_, err = tor.Start(ctx, &tor.Options{DataDir: dir, NoNetwork: true})
	require.ErrorIs(t, err, process.ErrDataDirInUse)
	assert.ErrorContains(t, err, dir)
	t.Log(err)
	_, err = first.Control().GetInfoValue(ctx, "version")
	assert.NoError(t, err)
}
