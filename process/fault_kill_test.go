//go:build unix

package process

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/internal/leakcheck"
)

// TestKillBeforeAnswer SIGKILLs tor right after Start has written its
// first command on the owning connection, before tor can answer it. Start
// must return promptly with an error matching ErrExited that says tor was
// killed (not a bare EOF, not a wait for StartTimeout), and leave no
// process, directory or goroutine behind.
func TestKillBeforeAnswer(t *testing.T) {
	path := needTor(t)
	parent := t.TempDir()
	c := &killOnWriteCreator{path: path}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := Start(ctx, Options{Creator: c, Torrc: offline(), TempDir: parent})
	returned := time.Now()
	if err == nil {
		p.Close()
		t.Fatal("Start succeeded")
	}
	killedAt, pid, cmd := c.killed()
	if pid == 0 {
		t.Fatalf("tor was not killed: %v", err)
	}
	t.Logf("Start returned %v after SIGKILL of tor (first command %q): %v", returned.Sub(killedAt), cmd, err)
	if !strings.HasPrefix(cmd, "GETINFO") {
		t.Errorf("first command %q, want the GETINFO of Start", cmd)
	}
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Start = %v, want ErrExited by a signal", err)
	}
	if errors.Is(err, ErrStartTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start waited for its deadline: %v", err)
	}
	if d := returned.Sub(killedAt); d > 10*time.Second { // a bound against hangs, not a speed test
		t.Errorf("Start returned %v after tor died", d)
	}
	leakcheck.WaitPidGone(t, pid, 10*time.Second)
	checkEmptyDir(t, parent)
	leakcheck.Check(t, 3*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor/process.", "github.com/gotorcon/tor/control."))
}

// killOnWriteCreator runs the tor binary at path, and SIGKILLs it once
// the first command has been written on its owning connection.
type killOnWriteCreator struct {
	path string

	mu       sync.Mutex
	killedAt time.Time
	pid      int
	cmd      string // the first command written
}

func (c *killOnWriteCreator) Create(ctx context.Context, cmd *Cmd) (Runner, error) {
	r, err := NewExecRunner(exec.Command(c.path, cmd.Args...), cmd.Output)
	if err != nil {
		return nil, err
	}
	return &killOnWriteRunner{Runner: r, c: c}, nil
}

func (c *killOnWriteCreator) killed() (time.Time, int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killedAt, c.pid, c.cmd
}

type killOnWriteRunner struct {
	Runner
	c *killOnWriteCreator
}

func (r *killOnWriteRunner) Control() (net.Conn, error) {
	conn, err := r.Runner.Control()
	if err != nil {
		return nil, err
	}
	return &killOnWriteConn{Conn: conn, r: r}, nil
}

type killOnWriteConn struct {
	net.Conn
	r *killOnWriteRunner
}

func (w *killOnWriteConn) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	c := w.r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pid == 0 {
		c.cmd = strings.TrimSpace(string(b[:n]))
		c.killedAt = time.Now()
		if kerr := syscall.Kill(w.r.Pid(), syscall.SIGKILL); kerr == nil {
			c.pid = w.r.Pid()
		}
	}
	return n, err
}
