package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	master1 = "jajb6aef4oni4wh2wwiyu5f5wkjlsq3znqeiqinneatxcizancj6ggqd"
	master2 = "xgvsic45jazgxmtvracunyxfso2qkyonzhkiy2o4rbcs2w6spotf77ad"
)

func TestOnionbalanceInstanceOffline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hs", "svc")
	require.NoError(t, WriteOnionbalanceConfig(dir, master1+".onion", strings.ToUpper(master2)))
	b, err := os.ReadFile(filepath.Join(dir, OnionbalanceConfigFile))
	require.NoError(t, err)
	assert.Equal(t, "MasterOnionAddress "+master1+".onion\nMasterOnionAddress "+master2+".onion\n", string(b))
	fi, err := os.Stat(filepath.Join(dir, OnionbalanceConfigFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left")

	for _, bad := range [][]string{nil, {"short.onion"}, {master1[:55] + "1"}, {master1 + ".onion\nDataDirectory /x"}} {
		assert.ErrorIs(t, WriteOnionbalanceConfig(dir, bad...), ErrInvalidOption, "%q", bad)
	}

	// The offline builder: a launch's torrc with an instance.
	hs := HiddenService{Dir: dir, Version: 3, Ports: []string{"80 127.0.0.1:8080"}, Options: []Option{{"HiddenServiceMaxStreams", "5"}}}
	assert.False(t, hs.IsOnionbalanceInstance())
	hs.SetOnionbalanceInstance(true)
	hs.SetOnionbalanceInstance(true)
	assert.True(t, hs.IsOnionbalanceInstance())
	c := New()
	require.NoError(t, c.AddHiddenService(hs))
	assert.Equal(t, "HiddenServiceDir "+dir+"\nHiddenServiceVersion 3\nHiddenServicePort 80 127.0.0.1:8080\n"+
		"HiddenServiceMaxStreams 5\nHiddenServiceOnionBalanceInstance 1\n", c.Torrc().String())
	hs.SetOnionbalanceInstance(false)
	assert.False(t, hs.IsOnionbalanceInstance())
	assert.Equal(t, []Option{{"HiddenServiceMaxStreams", "5"}}, hs.Options)

	// As GETCONF HiddenServiceOptions returns it (tor 0.4.9.11).
	parsed := ParseHiddenServices([]Option{{"HiddenServiceDir", dir}, {"HiddenServicePort", "80"}, {"HiddenServiceOnionBalanceInstance", "1"}})
	require.Len(t, parsed, 1)
	assert.True(t, parsed[0].IsOnionbalanceInstance())
}
