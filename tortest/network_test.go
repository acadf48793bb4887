//go:build unix

package tortest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/internal/testtor"
)

// testLogger sends tortest's progress messages to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// requireGone checks that Close left no process and no directory.
func requireGone(t *testing.T, n *Network, pids []int) {
	t.Helper()
	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		require.True(t, errors.Is(err, syscall.ESRCH), "tor pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	_, err := os.Stat(n.Dir())
	require.True(t, os.IsNotExist(err), "%s still there after Close: %v", n.Dir(), err)
}

// A network of 3 authorities and 2 relays with a 10 s voting interval
// (the non-default paths: several authorities, HSDir list, short interval),
// through NewNetwork in a subtest so its cleanup runs before the checks.
func TestNewNetworkThreeAuthorities(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Tor network")
	}
	var n *Network
	var pids []int
	ok := t.Run("network", func(t *testing.T) {
		n = NewNetwork(t, Options{Authorities: 3, Relays: 2, VotingInterval: 10 * time.Second, Logger: testLogger(t)})
		took, attempts := n.StartupTime()
		t.Logf("ready in %v (%d attempts)", took, attempts)
		nodes := n.Nodes()
		require.Len(t, nodes, 5)
		require.Len(t, n.DirAuthorities(), 3)
		require.Len(t, n.ClientTorrc().Values("DirAuthority"), 3)
		for _, nd := range nodes {
			pids = append(pids, nd.Pid)
			require.Positive(t, nd.Pid)
			require.Regexp(t, hexFP, nd.Fingerprint)
			require.True(t, strings.HasPrefix(nd.DataDir, n.Dir()))
			// Every authority serves a consensus listing every node.
			if nd.Role == Authority {
				c, err := readConsensus(nd.DataDir)
				require.NoError(t, err)
				require.Empty(t, c.missing(n.nodes), nd.Nickname)
				require.Equal(t, 10*time.Second, c.FreshUntil.Sub(c.ValidAfter))
			}
		}
	})
	if !ok {
		t.FailNow() // the subtest said why; n may be nil
	}
	requireGone(t, n, pids)
	// The logs outlive Close.
	var b strings.Builder
	require.NoError(t, n.WriteLogs(&b))
	require.Contains(t, b.String(), "==== authority auth2 (pid ")
	require.Contains(t, b.String(), "Published microdesc consensus")
}

// A lead too short for the relays to upload their descriptors gives a first
// consensus without them, or none at all when the authority starts after
// its voting time. Start must notice either quickly and report it as worth
// a restart with more lead (here with a single attempt).
func TestFirstConsensusTooEarly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Tor network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	n, err := start(ctx, Options{Lead: time.Millisecond, maxAttempts: 1, consensusGrace: 3 * time.Second, Logger: testLogger(t)})
	require.Error(t, err)
	t.Logf("after %v: %v", time.Since(t0), err)
	var retry *retryError
	require.ErrorAs(t, err, &retry)
	require.True(t, retry.moreLead)
	if !strings.Contains(err.Error(), "is incomplete") {
		require.Contains(t, err.Error(), "did not publish a consensus within")
		require.Contains(t, err.Error(), "last log lines:")
	}
	require.NotNil(t, n)
	var pids []int
	for _, nd := range n.nodes {
		pids = append(pids, nd.Pid)
	}
	requireGone(t, n, pids)
}

// A tor that exits at once makes Start fail with that node's output, and
// leaves nothing behind.
func TestStartFailsCleanly(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "tor")
	require.NoError(t, testtor.WriteExecutable(fake, []byte("#!/bin/sh\necho 'fake tor: broken' >&2\nexit 3\n")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := start(ctx, Options{TorPath: fake})
	require.Error(t, err)
	t.Log(err)
	if n != nil {
		_, serr := os.Stat(n.Dir())
		require.True(t, os.IsNotExist(serr), "dir left: %v", serr)
	}
	// And a cancelled context is reported as such.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = Start(ctx, Options{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestSweepStale(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string) string {
		d := filepath.Join(parent, name)
		require.NoError(t, os.Mkdir(d, 0o700))
		return d
	}
	dead := mk(dirPrefix + "dead")
	require.NoError(t, os.WriteFile(filepath.Join(dead, "lock"), nil, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(dead, "auth0", "keys"), 0o700))
	live := mk(dirPrefix + "live")
	l, err := lockDir(live)
	require.NoError(t, err)
	defer l.release()
	creating := mk(dirPrefix + "creating") // no lock file yet
	other := mk("gotorcon-tor-123")        // package process's, not ours
	require.NoError(t, os.WriteFile(filepath.Join(other, "lock"), nil, 0o600))

	sweepStale(parent, testLogger(t))
	for d, want := range map[string]bool{dead: false, live: true, creating: true, other: true} {
		_, err := os.Stat(d)
		require.Equal(t, want, err == nil, "%s exists: %v", d, err)
	}
}

// A port taken by another program between choosing it and tor binding it
// makes that tor exit; Start retries with new ports.
func TestPortTakenRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Tor network")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	pick := func(n int) ([]int, error) {
		calls++
		ports, err := freePorts(n)
		if calls == 1 {
			ports[len(ports)-1] = taken // the last relay's ORPort
		}
		return ports, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := start(ctx, Options{pickPorts: pick, Logger: testLogger(t)})
	require.NoError(t, err)
	defer n.Close()
	_, attempts := n.StartupTime()
	require.Equal(t, 2, attempts)
	require.Equal(t, 2, calls)
	for _, nd := range n.Nodes() {
		require.NotEqual(t, taken, nd.ORPort)
	}
}
