package onion

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/internal/testtor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hiddenServices returns tor's on-disk services.
func hiddenServices(t *testing.T, c *control.Conn) []config.HiddenService {
	t.Helper()
	tc, err := config.Load(testCtx(t), c, &config.LoadOptions{NoSync: true})
	require.NoError(t, err)
	defer tc.Close()
	return tc.HiddenServices()
}

func TestOfflineDirService(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx := testCtx(t)
	base := t.TempDir()

	// Tor generates the key the first time.
	dir := filepath.Join(base, "svc")
	l, err := (&DirConfig{Dir: dir, Ports: []int{80, 443}, Wait: WaitNone, MaxStreams: 7}).Listen(ctx, c)
	require.NoError(t, err)
	h, err := ReadHostname(dir)
	require.NoError(t, err)
	assert.Equal(t, h, l.Hostname())
	require.NotNil(t, l.Key())
	assert.Equal(t, l.ServiceID(), l.Key().ServiceID())
	assert.Equal(t, l.Hostname()+":80", l.Addr().String())
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	hs := hiddenServices(t, c)
	require.Len(t, hs, 1)
	assert.Equal(t, dir, hs[0].Dir)
	target := l.LocalAddr().String()
	assert.Equal(t, []string{"80 " + target, "443 " + target}, hs[0].Ports)
	v, _ := hs[0].Option("HiddenServiceMaxStreams")
	assert.Equal(t, "7", v)

	// The local socket serves what tor forwards.
	serveEcho(t, l)
	lc, err := net.Dial("tcp", target)
	require.NoError(t, err)
	echoRoundTrip(t, lc)
	lc.Close()

	// A second Listener on the same directory is refused; another
	// directory is added next to the first.
	_, err = (&DirConfig{Dir: dir, Wait: WaitNone}).Listen(ctx, c)
	assert.ErrorIs(t, err, ErrAddressInUse)
	k2, err := GenerateKey(nil)
	require.NoError(t, err)
	dir2 := filepath.Join(base, "svc2")
	l2, err := (&DirConfig{Dir: dir2, Key: k2, Wait: WaitNone, Targets: []control.OnionPort{{VirtPort: 22, Target: "127.0.0.1:2222"}}}).Listen(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, k2.ServiceID(), l2.ServiceID(), "tor published our key")
	assert.Nil(t, l2.LocalAddr())
	assert.Len(t, hiddenServices(t, c), 2)

	// Close removes the service from tor, not the key from disk.
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	hs = hiddenServices(t, c)
	require.Len(t, hs, 1)
	assert.Equal(t, dir2, hs[0].Dir)
	assert.Equal(t, []string{"22 127.0.0.1:2222"}, hs[0].Ports)
	require.NoError(t, l2.Close())
	assert.Empty(t, hiddenServices(t, c))
	again, err := ReadServiceDir(dir)
	require.NoError(t, err)
	assert.Equal(t, l.ServiceID(), again.ServiceID())

	// Listening again gives the same address; a different Key is refused.
	l3, err := (&DirConfig{Dir: dir, Wait: WaitNone}).Listen(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, l.ServiceID(), l3.ServiceID())
	require.NoError(t, l3.Close())
	_, err = (&DirConfig{Dir: dir, Key: k2, Wait: WaitNone}).Listen(ctx, c)
	assert.ErrorIs(t, err, ErrKeyMismatch)
	assert.Empty(t, hiddenServices(t, c))

	// Keep leaves the service configured after Close.
	l4, err := (&DirConfig{Dir: dir, Keep: true, Wait: WaitNone}).Listen(ctx, c)
	require.NoError(t, err)
	require.NoError(t, l4.Close())
	assert.Len(t, hiddenServices(t, c), 1)
	leakcheck.Check(t, 3*time.Second, leakcheck.Running("onion.(*Listener).watch"))
}

func TestOfflineDirServiceSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	var ids []string
	for i := 0; i < 2; i++ {
		tor := testtor.Start(t, testtor.Options{})
		c := tor.Connect(t)
		l, err := (&DirConfig{Dir: dir, Wait: WaitNone}).Listen(testCtx(t), c)
		require.NoError(t, err, "tor %d", i+1)
		ids = append(ids, l.ServiceID())
		require.NoError(t, l.Close())
		require.NoError(t, tor.Close())
	}
	assert.Equal(t, ids[0], ids[1], "the second tor publishes the address of the first")
}

func TestOfflineDirServiceReplacesSavedEntry(t *testing.T) {
	// A directory already in tor's configuration (say from a torrc) is
	// taken over: its ports now lead to the Listener.
	dir := filepath.Join(t.TempDir(), "svc")
	tor := testtor.Start(t, testtor.Options{Extra: []config.Option{
		{Key: "HiddenServiceDir", Value: dir},
		{Key: "HiddenServicePort", Value: "80 127.0.0.1:1"},
	}})
	c := tor.Connect(t)
	l, err := (&DirConfig{Dir: dir, Wait: WaitNone}).Listen(testCtx(t), c)
	require.NoError(t, err)
	hs := hiddenServices(t, c)
	require.Len(t, hs, 1)
	assert.Equal(t, []string{"80 " + l.LocalAddr().String()}, hs[0].Ports)
	require.NoError(t, l.Close())
	assert.Empty(t, hiddenServices(t, c))
}

func TestOfflineDirServiceClientAuth(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	dir := filepath.Join(t.TempDir(), "svc")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "authorized_clients"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "authorized_clients", "old.auth"), []byte("descriptor:x25519:AAAA\n"), 0o600))
	a, _ := GenerateClientKey(nil)
	b, _ := GenerateClientKey(nil)
	l, err := (&DirConfig{Dir: dir, Wait: WaitNone, ClientAuth: []ClientPublicKey{a.Public(), b.Public()}}).Listen(testCtx(t), c)
	require.NoError(t, err)
	defer l.Close()
	entries, err := os.ReadDir(filepath.Join(dir, "authorized_clients"))
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(dir, "authorized_clients", e.Name()))
		require.NoError(t, err)
		got = append(got, strings.TrimSpace(string(body)))
	}
	assert.ElementsMatch(t, []string{strings.TrimSpace(a.Public().AuthFile()), strings.TrimSpace(b.Public().AuthFile())}, got,
		"exactly the listed clients; the old file is gone")
}

func TestDirConfigBadInput(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	ctx := testCtx(t)
	for name, dc := range map[string]*DirConfig{
		"no dir":        {},
		"newline":       {Dir: "/tmp/x\nHiddenServiceDir /etc"},
		"bad port":      {Dir: "/tmp/x", Ports: []int{0}},
		"port twice":    {Dir: "/tmp/x", Ports: []int{80}, Targets: []control.OnionPort{{VirtPort: 80, Target: "1"}}},
		"target space":  {Dir: "/tmp/x", Targets: []control.OnionPort{{VirtPort: 81, Target: "1 2"}}},
		"max streams":   {Dir: "/tmp/x", MaxStreams: 70000},
		"local network": {Dir: "/tmp/x", LocalNetwork: "udp"},
	} {
		_, err := dc.Listen(ctx, conn)
		assert.Error(t, err, name)
	}
	_, err := (&DirConfig{Dir: "/tmp/x"}).Listen(ctx, nil)
	assert.Error(t, err)
	assert.Empty(t, f.commands(), "nothing sent for bad input")
}
