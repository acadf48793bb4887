//go:build unix

package launch

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/internal/leakcheck"
)

func offline() *config.Torrc { return new(config.Torrc).Add("DisableNetwork", "1") }

// closedPort returns a loopback TCP port nobody listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// deadEndNetwork is a torrc that lets tor enable its network without ever
// leaving loopback: its only directory authority is a closed loopback port
// (TestingTorNetwork lets tor use a private address), no fallbacks. Tor
// stalls at 5 % with "Connection refused" problems (RECOMMENDATION=ignore).
func deadEndNetwork(t testing.TB) *config.Torrc {
	port := closedPort(t)
	return new(config.Torrc).
		Add("DirAuthority", fmt.Sprintf("deadend orport=%d no-v2 v3ident=%040d 127.0.0.1:%d %040d", port, 1, port, 2)).
		Add("UseDefaultFallbackDirs", "0").
		Add("TestingTorNetwork", "1")
}

// deadEndBridge is like deadEndNetwork with a closed loopback bridge: tor
// reports the refused connection with RECOMMENDATION=warn at once.
func deadEndBridge(t testing.TB) *config.Torrc {
	port := closedPort(t)
	return new(config.Torrc).
		Add("DirAuthority", fmt.Sprintf("deadend orport=%d no-v2 v3ident=%040d 127.0.0.1:%d %040d", port, 1, port, 2)).
		Add("UseDefaultFallbackDirs", "0").
		Add("UseBridges", "1").
		Add("Bridge", fmt.Sprintf("127.0.0.1:%d", port))
}

// checkGoroutines fails when goroutines of ours (and, withExec, of os/exec:
// tor's output copiers) outlive a Close. The test's own tor (package
// testtor) may still run.
func checkGoroutines(t testing.TB, withExec bool) {
	t.Helper()
	ours := []string{"github.com/gotorcon/tor/"}
	if withExec {
		ours = append(ours, "os/exec.")
	}
	created := leakcheck.CreatedBy(ours...)
	leakcheck.Check(t, 3*time.Second, func(stack string) bool {
		return created(stack) && !strings.Contains(stack, "created by github.com/gotorcon/tor/internal/testtor")
	})
}

func checkNoGoroutines(t testing.TB) { checkGoroutines(t, true) }

// checkGone checks that the tor of a closed Tor left nothing behind.
func checkGone(t testing.TB, pid int, dir string) {
	t.Helper()
	if leakcheck.PidAlive(pid) {
		t.Errorf("tor pid %d still alive", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind (%v)", dir, err)
	}
}

func privDir(tor *Tor) string { return filepath.Dir(tor.Process().TorrcPath()) }
