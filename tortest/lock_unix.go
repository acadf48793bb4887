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

// startSlots is how many networks may launch at once, across every process
// of the machine. Measured on 2 cores: two simultaneous launches were
// ready in 7.5–8.7 s (8/8); three at once starved the relays so the first
// consensus missed some of them, costing a restart (~28 s).
const startSlots = 2

// startLock is one of startSlots advisory flock slots on files in the temp
// directory (go test runs the test binaries of several packages in
// parallel). The kernel drops it if the process dies.
type startLock struct{ f *os.File }

func lockPath(slot int) string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("gotorcon-tortest-start.%d.lock", slot))
}

// acquireStartLock waits until a start slot is free, or ctx is done.
func acquireStartLock(ctx context.Context) (*startLock, error) {
	var files [startSlots]*os.File
	closeAll := func(keep *os.File) {
		for _, f := range files {
			if f != nil && f != keep {
				f.Close()
			}
		}
	}
	for i := range files {
		f, err := os.OpenFile(lockPath(i), os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			closeAll(nil)
			return nil, fmt.Errorf("tortest: start lock: %w", err)
		}
		files[i] = f
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		for _, f := range files {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				closeAll(f)
				return &startLock{f: f}, nil
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
				closeAll(nil)
				return nil, fmt.Errorf("tortest: start lock %s: %w", f.Name(), err)
			}
		}
		select {
		case <-ctx.Done():
			closeAll(nil)
			return nil, fmt.Errorf("tortest: waiting for other networks' start-up (locks %s): %w", lockPath(0), ctx.Err())
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

// dirLock marks a network directory as in use for as long as the network
// lives (and the process that made it): sweepStale removes directories
// whose lock nobody holds.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tortest: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("tortest: locking %s: %w", f.Name(), err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // drops the flock
		l.f = nil
	}
}

// abandoned reports whether dir is the directory of a network whose
// program died: its lock file exists and nobody holds it. A directory
// without a lock file is being created (or not ours) and is left alone.
func abandoned(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
