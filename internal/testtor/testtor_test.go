package testtor

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
)

func TestStartAndClose(t *testing.T) {
	tor, err := New(Options{Password: "hunter2"})
	require.NoError(t, err)
	assert.True(t, tor.Running())
	assert.Less(t, len(tor.ControlSocket), 107)
	assert.True(t, strings.HasPrefix(tor.ControlAddr, "127.0.0.1:"), tor.ControlAddr)
	fi, err := os.Stat(tor.Dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	torrc, err := os.ReadFile(tor.Torrc)
	require.NoError(t, err)
	assert.NotContains(t, string(torrc), "hunter2", "the password itself must not be written")
	assert.Contains(t, string(torrc), "HashedControlPassword 16:")
	assert.Contains(t, string(torrc), "DisableNetwork 1")

	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pi, err := c.ProtocolInfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{control.AuthCookie, control.AuthSafeCookie, control.AuthHashedPassword}, pi.AuthMethods)
	assert.Equal(t, tor.CookieFile, pi.CookieFile)
	for _, network := range []string{"tcp", "unix"} {
		d := tor.Dial(t, network)
		require.NoError(t, d.Authenticate(ctx, control.WithPassword("hunter2"), control.WithAuthMethod(control.AuthHashedPassword)))
	}

	require.NoError(t, tor.Close())
	require.NoError(t, tor.Close())
	assert.False(t, tor.Running())
	_, err = os.Stat(tor.Dir)
	assert.True(t, os.IsNotExist(err))
	assert.Contains(t, tor.Output(), "Bootstrapped 0%")
}

func TestMissingTor(t *testing.T) {
	_, err := New(Options{Binary: "/nonexistent/tor"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tor is not installed")
	assert.Contains(t, err.Error(), "apt-get install")
}

func TestTorThatFailsToStart(t *testing.T) {
	_, err := New(Options{Extra: nil, NoCookie: true, Binary: "false"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited before opening its control port")
}
