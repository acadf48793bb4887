package process

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	dirPrefix = "gotorcon-tor-"
	lockName  = "gotorcon.lock"
	// staleUnlockedAge is how old a directory without a lock file must be
	// before a sweep removes it (its creator may be about to lock it).
	staleUnlockedAge = time.Minute
	// maxSunPath is the longest unix socket path we use: sun_path holds 104
	// bytes on the BSDs and macOS, 108 on Linux, including the NUL.
	maxSunPath = 100
)

// errLocked is lockShared's error when another holds the lock.
var errLocked = errors.New("locked")

// privateDir is one of our temporary directories, locked by this program
// for as long as it exists.
type privateDir struct {
	path string
	lock *os.File
}

// newPrivateDir creates a directory (mode 0700) under parent (os.TempDir
// when empty) and locks it.
func newPrivateDir(parent string) (*privateDir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	dir, err := os.MkdirTemp(parent, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("process: temporary directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("process: temporary directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("process: lock %s: %w", dir, err)
	}
	// The pid is written only once the lock is held: a sweeper that finds
	// the file unlocked with a pid in it knows its owner died.
	if _, err := lock.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		lock.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("process: lock %s: %w", dir, err)
	}
	return &privateDir{path: dir, lock: lock}, nil
}

// remove unlocks and removes the directory.
func (d *privateDir) remove() error {
	if d == nil {
		return nil
	}
	err := os.RemoveAll(d.path)
	if d.lock != nil {
		d.lock.Close()
	}
	if err != nil {
		// On Windows the open lock file blocks removal: try again.
		err = os.RemoveAll(d.path)
	}
	return err
}

var sweepOnce sync.Once

// sweepStaleOnce removes, once per program, the directories that dead
// programs of ours left behind.
func sweepStaleOnce(logger *slog.Logger, parents ...string) {
	sweepOnce.Do(func() { removeStaleDirs(logger, parents...) })
}

// staleParents are the directories where ours are created.
func staleParents(extra string) []string {
	ps := []string{os.TempDir()}
	if haveUnixSockets {
		ps = append(ps, "/tmp")
	}
	if extra != "" {
		ps = append(ps, extra)
	}
	return ps
}

// removeStaleDirs removes every gotorcon-tor-* directory under parents whose
// lock file is unlocked and names its (dead) owner, or that has no lock
// file and is older than staleUnlockedAge. It returns the directories it
// removed.
func removeStaleDirs(logger *slog.Logger, parents ...string) []string {
	var removed []string
	seen := map[string]bool{}
	for _, parent := range parents {
		parent = filepath.Clean(parent)
		if seen[parent] {
			continue
		}
		seen[parent] = true
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			if isStale(dir) {
				if err := os.RemoveAll(dir); err == nil {
					removed = append(removed, dir)
					if logger != nil {
						logger.Debug("removed stale tor directory", "dir", dir)
					}
				}
			}
		}
	}
	return removed
}

func isStale(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return false
	}
	if !ownedByUs(fi) {
		return false
	}
	lockPath := filepath.Join(dir, lockName)
	content, err := os.ReadFile(lockPath)
	if err != nil || len(bytes.TrimSpace(content)) == 0 {
		// No lock yet: its creator may be between MkdirTemp and locking.
		return time.Since(fi.ModTime()) > staleUnlockedAge
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(content)))
	if err != nil {
		return time.Since(fi.ModTime()) > staleUnlockedAge
	}
	return lockIsStale(lockPath, pid)
}
