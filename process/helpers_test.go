package process

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
)

// offline is the torrc of every test tor: no network at all.
func offline() *config.Torrc { return new(config.Torrc).Add("DisableNetwork", "1") }

func needTor(t testing.TB) string {
	t.Helper()
	path, err := Find("")
	if err != nil {
		t.Fatalf("these tests need tor: %v", err)
	}
	return path
}

// pidAlive reports whether pid is a live (not zombie) process.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if runtime.GOOS == "linux" {
			return false
		}
		p, err := os.FindProcess(pid)
		return err == nil && p.Signal(sigZero) == nil
	}
	// "pid (comm) S ..." – comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitPidGone(t testing.TB, pid int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for pidAlive(pid) {
		if time.Since(start) > d {
			t.Fatalf("pid %d still alive after %v", pid, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// ourGoroutines lists goroutines created by this package or os/exec.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "created by github.com/gotorcon/tor/process.") ||
			strings.Contains(g, "created by os/exec.") {
			out = append(out, g)
		}
	}
	return out
}

func checkNoGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		gs := ourGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlived Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkEmptyDir fails when dir has entries.
func checkEmptyDir(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Fatalf("%s is not empty: %v", dir, names)
	}
}

// fakeTor writes a shell script that answers --version with version and
// otherwise runs body. The script writes its pid to the returned pidfile.
func fakeTor(t testing.TB, version, body string) (path, pidfile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "tor")
	pidfile = filepath.Join(dir, "pid")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = "--version" ]; then
%s
exit 0
fi
echo $$ > %s
owning=
while [ $# -gt 0 ]; do
	if [ "$1" = "__OwningControllerFD" ]; then owning=$2; fi
	shift
done
%s
`, version, pidfile, body)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, pidfile
}

func readPidFile(t testing.TB, pidfile string) int {
	t.Helper()
	f, err := os.Open(pidfile)
	if err != nil {
		return 0
	}
	defer f.Close()
	var pid int
	fmt.Fscan(bufio.NewReader(f), &pid)
	return pid
}
