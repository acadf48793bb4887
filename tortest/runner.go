package tortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gotorcon/tor/config"
)

// TEMPORARY: a minimal tor runner used until the process package lands;
// startTor will then call process.Start.

// torProcess is the part of *process.Process that tortest uses.
type torProcess interface {
	Close() error
	Done() <-chan struct{}
	Err() error
	Pid() int
}

type execProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

func startTor(ctx context.Context, tor string, torrc *config.Torrc, dataDir string, out io.Writer, _ *slog.Logger) (torProcess, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, "torrc")
	if err := torrc.WriteFile(path); err != nil {
		return nil, err
	}
	cmd := exec.Command(tor, "-f", path, "--defaults-torrc", os.DevNull, "--ignore-missing-torrc")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &execProc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *execProc) Done() <-chan struct{} { return p.done }
func (p *execProc) Err() error            { <-p.done; return p.err }
func (p *execProc) Pid() int              { return p.cmd.Process.Pid }
func (p *execProc) Close() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("tor exited: %w", p.err)
	}
	return nil
}
