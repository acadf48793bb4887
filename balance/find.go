package balance

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotInstalled is matched (errors.Is) when the onionbalance program
// cannot be found.
var ErrNotInstalled = errors.New("balance: onionbalance is not installed (Debian, Ubuntu: sudo apt-get install onionbalance; elsewhere: pip install onionbalance)")

// Program is the name of the onionbalance executable.
const Program = "onionbalance"

// usualDirs are where packages install onionbalance. Debian's goes to
// /usr/sbin, which is not on the PATH of most users.
var usualDirs = []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"}

// find returns the onionbalance program to run: path if set (a name
// without a slash is looked up on PATH), else onionbalance on PATH, else in
// the usual directories.
func find(path string) (string, error) {
	if path != "" {
		if !strings.ContainsRune(path, '/') {
			p, err := exec.LookPath(path)
			if err != nil {
				return "", fmt.Errorf("%w: Path %q: %v", ErrNotInstalled, path, err)
			}
			return p, nil
		}
		if !isExecutable(path) {
			return "", fmt.Errorf("%w: Path %q is not an executable file", ErrNotInstalled, path)
		}
		return path, nil
	}
	if p, err := exec.LookPath(Program); err == nil {
		return p, nil
	}
	for _, d := range usualDirs {
		if p := filepath.Join(d, Program); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (looked on PATH and in %s)", ErrNotInstalled, strings.Join(usualDirs, ", "))
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}
