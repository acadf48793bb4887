//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package process

import (
	"os"
	"runtime"
	"syscall"
)

// lockFile creates path and keeps it open; on Windows an open file cannot
// be removed, which protects the directory from sweepers.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// lockIsStale reports whether the owning program (pid) is gone.
func lockIsStale(path string, pid int) bool {
	if pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	defer p.Release()
	if runtime.GOOS == "windows" {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err != nil && err != syscall.EPERM
}

func ownedByUs(fi os.FileInfo) bool { return true }

// lockShared opens (creating it when missing) the lock file of a directory
// that outlives us. There is no flock here: tor's own lock on its data
// directory is what keeps a second tor out.
func lockShared(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
