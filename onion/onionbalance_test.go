package onion

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOfflineOnionbalanceInstance makes an on-disk service an Onionbalance
// instance on a real tor 0.4.9.11 (offline), and checks what tor accepts:
// ob_config is required, and ADD_ONION has no way to make an ephemeral
// service an instance.
func TestOfflineOnionbalanceInstance(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx := testCtx(t)
	master, err := GenerateKey(nil)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "svc")

	// A mistyped master address is refused before tor sees it (tor 0.4.9
	// registers it without a word).
	bad := master.ServiceID()[:50] + "aaaaaa"
	_, err = (&DirConfig{Dir: dir, Wait: WaitNone, OnionbalanceMasters: []string{bad}}).Listen(ctx, c)
	require.ErrorIs(t, err, ErrInvalidAddress)
	assert.Empty(t, hiddenServices(t, c))

	l, err := (&DirConfig{Dir: dir, Wait: WaitNone, Ports: []int{80}, OnionbalanceMasters: []string{master.Hostname()}}).Listen(ctx, c)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, config.OnionbalanceConfigFile))
	require.NoError(t, err)
	assert.Equal(t, "MasterOnionAddress "+master.Hostname()+"\n", string(b))
	fi, err := os.Stat(filepath.Join(dir, config.OnionbalanceConfigFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	hs := hiddenServices(t, c)
	require.Len(t, hs, 1)
	assert.True(t, hs[0].IsOnionbalanceInstance(), "GETCONF: %+v", hs[0])
	require.NoError(t, l.Close())
	assert.Empty(t, hiddenServices(t, c))

	// Without ob_config tor refuses the service.
	dir2 := filepath.Join(t.TempDir(), "svc2")
	require.NoError(t, os.Mkdir(dir2, 0o700))
	err = c.SetConf(ctx, control.ConfEntry{Key: "HiddenServiceDir", Value: dir2}, control.ConfEntry{Key: "HiddenServicePort", Value: "80"},
		control.ConfEntry{Key: "HiddenServiceOnionBalanceInstance", Value: "1"})
	var ce *control.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 513, ce.Code)

	// Ephemeral services cannot be instances: no flag, no argument.
	_, err = c.Request(ctx, "ADD_ONION NEW:ED25519-V3 Flags=OnionBalanceInstance Port=80")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 512, ce.Code)
	assert.Contains(t, ce.Error(), `Invalid 'Flags' argument: "OnionBalanceInstance"`)
	_, err = c.Request(ctx, "ADD_ONION NEW:ED25519-V3 HiddenServiceOnionBalanceInstance=1 Port=80")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 512, ce.Code)
}
