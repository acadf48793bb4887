package config

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOfflineBuild(t *testing.T) {
	c := New()
	assert.Nil(t, c.conn, "offline")
	require.NoError(t, c.Set("socksport", "9050"))
	require.NoError(t, c.Append("SocksPort", "unix:/run/socks"))
	require.NoError(t, c.Set("__SocksPort", "9999"))
	require.NoError(t, c.Set("Log", "notice stdout", "info file /tmp/x"))
	require.NoError(t, c.Append("Log", "debug file /tmp/y"))
	require.NoError(t, c.Set("ContactInfo", "tab\there # hash"))
	require.NoError(t, c.SetBool("DisableNetwork", true))
	require.NoError(t, c.SetDuration("MaxCircuitDirtiness", 5*time.Minute))
	require.NoError(t, c.SetDuration("KISTSchedRunInterval", 20*time.Millisecond))
	require.NoError(t, c.SetDataSize("BandwidthRate", 2<<20))
	require.NoError(t, c.SetInt("ConnLimit", 2000))
	require.NoError(t, c.Set("FutureOption", "kept"), "the builtin schema is lenient")
	require.NoError(t, c.AddHiddenService(HiddenService{Dir: "/hs1", Version: 3, Ports: []string{"80 127.0.0.1:8080"}}))
	require.NoError(t, c.AddHiddenService(HiddenService{Dir: "/hs2", Ports: []string{"81"}, Options: []Option{{"HiddenServiceMaxStreams", "5"}}}))
	assert.ErrorIs(t, c.AddHiddenService(HiddenService{Dir: "/hs1"}), ErrInvalidOption, "same dir twice")

	assert.Equal(t, []string{"9050", "unix:/run/socks"}, c.Get("SocksPort").Lines())
	assert.Equal(t, typeDependent, c.Get("SocksPort").Type)
	assert.Equal(t, []Option{{"SocksPort", "9050"}, {"SocksPort", "unix:/run/socks"}, {"__SocksPort", "9999"}}, c.GroupLines("SocksPortLines"))
	assert.Equal(t, 3, len(c.Get("Log").Lines()))
	d, err := c.Get("MaxCircuitDirtiness").Duration()
	require.NoError(t, err)
	assert.Equal(t, 5*time.Minute, d)
	d, err = c.Get("KISTSchedRunInterval").Duration()
	require.NoError(t, err)
	assert.Equal(t, 20*time.Millisecond, d)
	assert.Equal(t, []string{"80 127.0.0.1:8080", "81"}, c.Get("HiddenServicePort").Lines(), "members read across the group, like GETCONF")

	text := c.Torrc().String()
	assert.Equal(t, "SocksPort 9050\n"+
		"SocksPort unix:/run/socks\n"+
		"__SocksPort 9999\n"+
		"Log notice stdout\n"+
		"Log info file /tmp/x\n"+
		"Log debug file /tmp/y\n"+
		"ContactInfo \"tab\\there # hash\"\n"+
		"DisableNetwork 1\n"+
		"MaxCircuitDirtiness 300 seconds\n"+
		"KISTSchedRunInterval 20 msec\n"+
		"BandwidthRate 2097152 bytes\n"+
		"ConnLimit 2000\n"+
		"FutureOption kept\n"+
		"HiddenServiceDir /hs1\n"+
		"HiddenServiceVersion 3\n"+
		"HiddenServicePort 80 127.0.0.1:8080\n"+
		"HiddenServiceDir /hs2\n"+
		"HiddenServicePort 81\n"+
		"HiddenServiceMaxStreams 5\n", text)

	// Replace, clear, remove.
	require.NoError(t, c.Set("Log", "err stderr"))
	assert.Equal(t, []string{"err stderr"}, c.Get("Log").Lines())
	require.NoError(t, c.Clear("Log"))
	assert.False(t, c.Get("Log").IsSet())
	require.NoError(t, c.Clear("SocksPort"))
	assert.Equal(t, []Option{{"__SocksPort", "9999"}}, c.GroupLines("SocksPort"))
	removed, err := c.RemoveHiddenService("/hs1")
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = c.RemoveHiddenService("/nope")
	require.NoError(t, err)
	assert.False(t, removed)
	assert.Equal(t, []HiddenService{{Dir: "/hs2", Ports: []string{"81"}, Options: []Option{{"HiddenServiceMaxStreams", "5"}}}}, c.HiddenServices())
	assert.NotContains(t, c.Torrc().String(), "Log ")
	assert.Contains(t, c.Pending(), "HiddenServiceOptions")
	c.Discard("log")
	assert.NotContains(t, c.Pending(), "Log")
	c.Discard()
	assert.Empty(t, c.Pending())
	assert.Empty(t, c.Torrc().Options())

	// Operations that need tor.
	ctx := context.Background()
	assert.ErrorIs(t, c.Apply(ctx), ErrOffline)
	assert.ErrorIs(t, c.Reset(ctx, "ConnLimit"), ErrOffline)
	assert.ErrorIs(t, c.Save(ctx, SaveOptions{}), ErrOffline)
	assert.ErrorIs(t, c.Reload(ctx), ErrOffline)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.Set("ConnLimit", "1"), net.ErrClosed)
}

func TestOfflineRefusals(t *testing.T) {
	c := New()
	assert.ErrorIs(t, c.Set("ConnLimit", "1", "2"), ErrInvalidOption, "single-valued")
	assert.ErrorIs(t, c.Append("ConnLimit", "1"), ErrInvalidOption, "single-valued")
	assert.ErrorIs(t, c.Set("HiddenServicePort", "80"), ErrInvalidOption, "hidden services go through the HS methods")
	assert.ErrorIs(t, c.Set("SocksPortLines", "80"), ErrInvalidOption, "virtual")
	assert.ErrorIs(t, c.Set("Bad Key", "x"), ErrInvalidOption)
	assert.ErrorIs(t, c.Set("ContactInfo", "nul\x00"), ErrInvalidOption)
	assert.ErrorIs(t, c.SetHiddenServices(HiddenService{Dir: "/x", Options: []Option{{"HiddenServiceDir", "/y"}}}), ErrInvalidOption)
	assert.Empty(t, c.Pending(), "a refused change stages nothing")

	b, err := os.ReadFile(filepath.Join("..", "testdata", "config", "list-torrc-options-0.4.9.11.txt"))
	require.NoError(t, err)
	s, err := parseOptionList(b)
	require.NoError(t, err)
	strict := NewWithSchema(s)
	err = strict.Set("SocksPrt", "0")
	require.ErrorIs(t, err, ErrUnknownOption)
	assert.Contains(t, err.Error(), "did you mean SocksPort?")
	require.NoError(t, strict.Set("SocksPort", "0"))
	assert.ErrorIs(t, strict.SetHiddenServices(HiddenService{Dir: "/x", Options: []Option{{"HiddenServiceMaxStreem", "1"}}}), ErrUnknownOption)
}
