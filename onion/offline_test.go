package onion

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Integration tests against a real tor started offline (DisableNetwork 1):
// every control command works, nothing is published.

func onionsCurrent(t *testing.T, c *control.Conn, key string) []string {
	t.Helper()
	v, err := c.GetInfoValue(testCtx(t), key)
	require.NoError(t, err)
	return strings.Fields(v)
}

func TestOfflineKeyFormsGiveOurAddress(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx := testCtx(t)

	torKey, err := ReadServiceDir(torDir)
	require.NoError(t, err)
	stdKey, err := NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	require.NoError(t, err)
	genKey, err := GenerateKey(nil)
	require.NoError(t, err)
	blobKey, err := ParseKeyBlob(genKey.Blob())
	require.NoError(t, err)

	for name, k := range map[string]*Key{
		"tor's hs_ed25519_secret_key": torKey,
		"crypto/ed25519 seed":         stdKey,
		"GenerateKey":                 genKey,
	} {
		l, err := (&ListenConfig{Key: k, Wait: WaitNone}).Listen(ctx, c)
		require.NoError(t, err, name)
		assert.Equal(t, k.ServiceID(), l.ServiceID(), name)
		assert.Contains(t, onionsCurrent(t, c, "onions/current"), k.ServiceID(), name)
		require.NoError(t, l.Close())
		assert.NotContains(t, onionsCurrent(t, c, "onions/current"), k.ServiceID(), "DEL_ONION on Close")
	}
	assert.Equal(t, "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad", torKey.ServiceID())

	// A key tor generates: the address we derive from the returned blob is
	// tor's ServiceID, and importing the key again gives the same address.
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(ctx, c)
	require.NoError(t, err)
	require.NotNil(t, l.Key())
	assert.Equal(t, l.ServiceID(), l.Key().ServiceID())
	key := l.Key()
	// Importing it while it runs collides.
	_, err = (&ListenConfig{Key: key, Wait: WaitNone}).Listen(ctx, c)
	assert.ErrorIs(t, err, ErrAddressInUse)
	require.NoError(t, l.Close())
	l, err = (&ListenConfig{Key: key, Wait: WaitNone}).Listen(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, key.ServiceID(), l.ServiceID())
	require.NoError(t, l.Close())

	// The same key through the blob form.
	l, err = (&ListenConfig{Key: blobKey, Wait: WaitNone, DiscardKey: true}).Listen(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, genKey.ServiceID(), l.ServiceID())
	require.NoError(t, l.Close())

	// DiscardPK: no key comes back.
	l, err = (&ListenConfig{Wait: WaitNone, DiscardKey: true}).Listen(ctx, c)
	require.NoError(t, err)
	assert.Nil(t, l.Key())
	_, err = ParseAddress(l.ServiceID())
	assert.NoError(t, err)
	require.NoError(t, l.Close())
}

// The hostname file tor writes for a key we wrote into a HiddenServiceDir
// is the address we derive.
func TestOfflineServiceDirWrittenByUs(t *testing.T) {
	k, err := GenerateKey(nil)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "hs")
	require.NoError(t, WriteServiceDir(dir, k))
	require.NoError(t, os.Remove(filepath.Join(dir, HostnameFile)))
	tor := testtor.Start(t, testtor.Options{Extra: []config.Option{
		{Key: "HiddenServiceDir", Value: dir},
		{Key: "HiddenServicePort", Value: "80 127.0.0.1:1"},
	}})
	c := tor.Connect(t)
	_ = c
	h, err := ReadHostname(dir)
	require.NoError(t, err, "tor writes hostname at start, even offline")
	assert.Equal(t, k.Hostname(), h)
	got, err := ReadServiceDir(dir)
	require.NoError(t, err)
	assert.True(t, k.Equal(got))
}

func TestOfflineOptions(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx := testCtx(t)

	client, err := GenerateClientKey(nil)
	require.NoError(t, err)
	lc := &ListenConfig{
		Wait:                   WaitNone,
		Ports:                  []int{80, 443},
		Targets:                []control.OnionPort{{VirtPort: 22, Target: "127.0.0.1:2222"}, {VirtPort: 23, Target: "[::1]:23"}},
		MaxStreams:             3,
		MaxStreamsCloseCircuit: true,
		ClientAuth:             []ClientPublicKey{client.Public()},
	}
	if runtime.GOOS != "windows" {
		lc.LocalNetwork = "unix"
	}
	l, err := lc.Listen(ctx, c)
	require.NoError(t, err, "tor accepts every option together")
	assert.Equal(t, []int{80, 443, 22, 23}, l.Ports())
	require.NoError(t, l.Close())

	// NonAnonymous on an anonymous tor: a clear error.
	_, err = (&ListenConfig{Wait: WaitNone, NonAnonymous: true}).Listen(ctx, c)
	assert.ErrorIs(t, err, ErrAnonymityMode)
	assert.ErrorContains(t, err, "HiddenServiceSingleHopMode 1")

	// Detach: the service outlives Close and the connection; another
	// connection can remove it.
	l, err = (&ListenConfig{Wait: WaitNone, Detach: true, Targets: []control.OnionPort{{VirtPort: 80, Target: "8080"}}}).Listen(ctx, c)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	assert.Contains(t, onionsCurrent(t, c, "onions/detached"), l.ServiceID())
	c2 := tor.Connect(t)
	require.NoError(t, c2.DelOnion(ctx, l.ServiceID()))
	assert.NotContains(t, onionsCurrent(t, c, "onions/detached"), l.ServiceID())

	// A non-detached service goes with its control connection, and its
	// Listener notices.
	c3 := tor.Connect(t)
	l, err = (&ListenConfig{Wait: WaitNone}).Listen(ctx, c3)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	c3.Close()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Accept not unblocked")
	}
	require.NoError(t, l.Close())
	assert.NotContains(t, onionsCurrent(t, c, "onions/current"), l.ServiceID())
}

// Offline nothing is uploaded: the default wait times out and removes the
// service.
func TestOfflinePublishTimeout(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	var progress []Progress
	start := time.Now()
	_, err := (&ListenConfig{PublishTimeout: time.Second, Progress: func(p Progress) { progress = append(progress, p) }}).Listen(testCtx(t), c)
	assert.ErrorIs(t, err, ErrPublish)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
	var pe *PublishError
	require.ErrorAs(t, err, &pe)
	assert.Empty(t, onionsCurrent(t, c, "onions/current"), "removed after the failed wait")
	t.Logf("progress offline: %+v", progress)
}

func TestOfflineClientAuth(t *testing.T) {
	authDir := filepath.Join(t.TempDir(), "auth")
	require.NoError(t, os.Mkdir(authDir, 0o700))
	tor := testtor.Start(t, testtor.Options{Extra: []config.Option{{Key: "ClientOnionAuthDir", Value: authDir}}})
	c := tor.Connect(t)
	ctx := testCtx(t)

	k, err := NewClientKey(seq32())
	require.NoError(t, err)
	k2, err := GenerateClientKey(nil)
	require.NoError(t, err)
	const addr = "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad"
	const addr2 = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid"

	res, err := AddClientAuth(ctx, c, ClientAuth{Address: addr + ".onion", Key: k, Name: "bob", Permanent: true})
	require.NoError(t, err)
	assert.Equal(t, ClientAuthAdded, res)
	// Tor wrote the file we would write.
	b, err := os.ReadFile(filepath.Join(authDir, addr+".auth_private"))
	require.NoError(t, err)
	want, err := k.AuthPrivate(addr)
	require.NoError(t, err)
	assert.Equal(t, want, string(b))

	res, err = AddClientAuth(ctx, c, ClientAuth{Address: strings.ToUpper(addr), Key: k})
	require.NoError(t, err)
	assert.Equal(t, ClientAuthReplaced, res)
	_, err = AddClientAuth(ctx, c, ClientAuth{Address: addr2, Key: k2, Name: "alice"})
	require.NoError(t, err)

	list, err := ClientAuths(ctx, c, "")
	require.NoError(t, err)
	require.Len(t, list, 2)
	byAddr := map[string]ClientAuth{}
	for _, a := range list {
		byAddr[a.Address] = a
	}
	assert.True(t, k.Equal(byAddr[addr].Key))
	assert.True(t, k2.Equal(byAddr[addr2].Key))
	assert.Equal(t, "alice", byAddr[addr2].Name)
	one, err := ClientAuths(ctx, c, addr2+".onion")
	require.NoError(t, err)
	require.Len(t, one, 1)

	removed, err := RemoveClientAuth(ctx, c, addr2)
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = RemoveClientAuth(ctx, c, addr2)
	require.NoError(t, err)
	assert.False(t, removed)
	list, err = ClientAuths(ctx, c, "")
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

func TestOfflineClientAuthNoStore(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	k, _ := GenerateClientKey(nil)
	_, err := AddClientAuth(testCtx(t), c, ClientAuth{Address: fakeID, Key: k, Permanent: true})
	assert.ErrorIs(t, err, ErrClientAuthStore)
}

// The local socket really carries what tor would forward.
func TestOfflineLocalSocketServes(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), c)
	require.NoError(t, err)
	defer l.Close()
	go func() {
		conn, err := net.Dial("tcp", l.LocalAddr().String())
		if err == nil {
			conn.Write([]byte("ping"))
			conn.Close()
		}
	}()
	conn, err := l.Accept()
	require.NoError(t, err)
	b, _ := io.ReadAll(conn)
	assert.Equal(t, "ping", string(b))
}
