// Package leakcheck helps tests prove that nothing outlives a Close: no
// goroutine of ours, no tor process.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Goroutines returns the stacks of the running goroutines that match.
func Goroutines(match func(stack string) bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if match(g) {
			out = append(out, g)
		}
	}
	return out
}

// CreatedBy matches the goroutines created by a function whose full name
// starts with one of prefixes ("github.com/gotorcon/tor/process.",
// "os/exec.").
func CreatedBy(prefixes ...string) func(stack string) bool {
	return func(stack string) bool {
		for _, p := range prefixes {
			if strings.Contains(stack, "created by "+p) {
				return true
			}
		}
		return false
	}
}

// Running matches the goroutines whose stack contains one of the given
// function names ("control.(*Conn).readLoop").
func Running(funcs ...string) func(stack string) bool {
	return func(stack string) bool {
		for _, f := range funcs {
			if strings.Contains(stack, f) {
				return true
			}
		}
		return false
	}
}

// Check fails t if goroutines that match are still running after within
// (it polls, so goroutines that are ending get the time to end), listing
// their stacks.
func Check(t testing.TB, within time.Duration, match func(stack string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		gs := Goroutines(match)
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines still running after Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// PidAlive reports whether pid is a running process (a zombie is not).
func PidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/stat"); serr == nil {
			return false // a system with /proc: the process is gone
		}
		p, err := os.FindProcess(pid)
		return err == nil && p.Signal(syscall.Signal(0)) == nil
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// WaitPidGone waits up to within for pid to exit and returns how long that
// took; it fails t if pid still runs.
func WaitPidGone(t testing.TB, pid int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for PidAlive(pid) {
		if time.Since(start) > within {
			t.Fatalf("pid %d still alive after %v", pid, within)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	return time.Since(start)
}
