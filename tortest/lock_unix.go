//go:build unix

package tortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// startLock serialises network start-ups across processes (go test runs the
// test binaries of several packages in parallel). It is an advisory flock on
// a file in the temp directory; the kernel drops it if the process dies.
type startLock struct{ f *os.File }

func lockPath() string { return filepath.Join(os.TempDir(), "gotorcon-tortest-start.lock") }

// acquireStartLock waits until no other tortest start-up holds the lock, or
// ctx is done.
func acquireStartLock(ctx context.Context) (*startLock, error) {
	f, err := os.OpenFile(lockPath(), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("tortest: start lock: %w", err)
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &startLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("tortest: start lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("tortest: waiting for another network's start-up (lock %s): %w", f.Name(), ctx.Err())
		case <-t.C:
		}
	}
}

// release drops the lock; it is safe to call more than once.
func (l *startLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
