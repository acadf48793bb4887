package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// envTor is the environment variable that [Find] consults when no explicit
// path is given: the path (or the name on PATH) of the tor binary to use.
const envTor = "GOTORCON_TOR"

// ErrNotFound is returned (wrapped) by [Find] when no tor binary is found.
var ErrNotFound = errors.New("process: tor binary not found")

// Find returns the path of the tor binary to run: path when it is not
// empty (a name without a separator is looked up on PATH), else the value
// of $GOTORCON_TOR, else "tor" on PATH, else the first executable of the
// usual install locations (package managers, Homebrew, MacPorts, snap, the
// Tor Browser bundle). The error names every place that was tried.
func Find(path string) (string, error) {
	if path != "" {
		return lookExplicit(path, "Options.Path")
	}
	if env := os.Getenv(envTor); env != "" {
		return lookExplicit(env, "$"+envTor)
	}
	tried := []string{"tor on PATH"}
	if p, err := exec.LookPath(torExe()); err == nil {
		return absPath(p), nil
	}
	for _, p := range usualLocations() {
		tried = append(tried, p)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (tried %s); install it (%s) or set %s to its path", ErrNotFound, strings.Join(tried, ", "), installHint(), envTor)
}

// installHint says how to install or upgrade tor on this system.
func installHint() string {
	switch runtime.GOOS {
	case "darwin":
		return "brew install tor"
	case "windows":
		return "the Tor Expert Bundle from https://www.torproject.org/download/tor/"
	default:
		return "sudo apt-get install tor on Debian and Ubuntu, or your system's package manager"
	}
}

func lookExplicit(path, from string) (string, error) {
	if !strings.ContainsRune(path, os.PathSeparator) && !strings.ContainsRune(path, '/') {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%q is not on PATH: %w", ErrNotFound, from, path, err)
		}
		return absPath(p), nil
	}
	if !isExecutable(path) {
		return "", fmt.Errorf("%w: %s=%q is not an executable file", ErrNotFound, from, path)
	}
	return absPath(path), nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		return false
	}
	if runtime.GOOS == "windows" {
		return true
	}
	return fi.Mode().Perm()&0o111 != 0
}

func torExe() string {
	if runtime.GOOS == "windows" {
		return "tor.exe"
	}
	return "tor"
}

// usualLocations lists where package managers and the Tor Browser put tor.
func usualLocations() []string {
	home, _ := os.UserHomeDir()
	switch runtime.GOOS {
	case "windows":
		var ps []string
		for _, base := range []string{
			filepath.Join(home, "Desktop"),
			os.Getenv("ProgramFiles"),
			os.Getenv("ProgramFiles(x86)"),
			os.Getenv("LOCALAPPDATA"),
		} {
			if base != "" {
				ps = append(ps, filepath.Join(base, "Tor Browser", "Browser", "TorBrowser", "Tor", "tor.exe"))
			}
		}
		return ps
	case "darwin":
		return []string{
			"/opt/homebrew/bin/tor",
			"/usr/local/bin/tor",
			"/opt/local/bin/tor",
			"/Applications/Tor Browser.app/Contents/MacOS/Tor/tor",
			filepath.Join(home, "Applications/Tor Browser.app/Contents/MacOS/Tor/tor"),
		}
	default:
		return []string{
			"/usr/bin/tor",
			"/usr/sbin/tor",
			"/usr/local/bin/tor",
			"/usr/local/sbin/tor",
			"/snap/bin/tor",
			"/opt/homebrew/bin/tor",
			filepath.Join(home, "tor-browser/Browser/TorBrowser/Tor/tor"),
		}
	}
}
