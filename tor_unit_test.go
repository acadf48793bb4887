package tor

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/config"
)

// TestDataDirDefault checks where a private tor keeps its state: the
// program's own directory under the user's configuration directory, unless
// Ephemeral or a DataDir says otherwise; under go test a throw-away one.
func TestDataDirDefault(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("HOME", t.TempDir())

	got, err := pickDataDir(&Options{}, false)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(got, cfgHome+string(filepath.Separator)), "default %q is not under %s", got, cfgHome)
	assert.Equal(t, "gotorcon-"+programName(), filepath.Base(got))

	got, err = pickDataDir(&Options{}, true)
	require.NoError(t, err)
	assert.Empty(t, got, "under go test the default is a temporary directory, never the user's")

	got, err = pickDataDir(&Options{Ephemeral: true}, false)
	require.NoError(t, err)
	assert.Empty(t, got)

	got, err = pickDataDir(&Options{Network: new(config.Torrc)}, false)
	require.NoError(t, err)
	assert.Empty(t, got, "a test network's state is of no use later")

	got, err = pickDataDir(&Options{DataDir: "/x/y"}, false)
	require.NoError(t, err)
	assert.Equal(t, "/x/y", got)

	_, err = pickDataDir(&Options{DataDir: "/x/y", Ephemeral: true}, false)
	assert.ErrorContains(t, err, "exclusive")

	// Without a configuration directory: the documented fallback.
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	got, err = pickDataDir(&Options{}, false)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// TestWarningHandler checks that records at Warn and above reach the
// callback and that everything reaches the caller's logger.
func TestWarningHandler(t *testing.T) {
	var warned []string
	var logged strings.Builder
	next := slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})
	l := slog.New(&warnHandler{next: next, warn: func(s string) { warned = append(warned, s) }}).With("source", "tor")
	l.Info("Bootstrapped 5%")
	l.Warn("Problem bootstrapping. Stuck at 5%")
	l.Log(context.Background(), slog.LevelError, "Could not bind")
	assert.Equal(t, []string{"Problem bootstrapping. Stuck at 5%", "Could not bind"}, warned)
	assert.Equal(t, 3, strings.Count(logged.String(), "source=tor"), logged.String())
}
