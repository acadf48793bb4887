package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is a tor version: Major.Minor.Micro.Patch with an optional status
// tag such as "alpha", "rc" or "alpha-dev".
type Version struct {
	Major, Minor, Micro, Patch int
	Status                     string
}

// MinVersion is the oldest tor this package supports: the first of the
// 0.4.5 series (SocksPort ExtendedErrors, __OwningControllerFD, ADD_ONION
// v3 client authorization and every control command this module uses).
func MinVersion() Version { return Version{0, 4, 5, 0, ""} }

// ErrTooOld is returned (wrapped) for a tor older than [MinVersion].
var ErrTooOld = errors.New("tor is too old")

// ErrBadVersion is returned (wrapped) when tor's version cannot be read.
var ErrBadVersion = errors.New("cannot read tor's version")

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$`)

// ParseVersion parses a version as tor writes it: "0.4.9.11",
// "0.4.9.1-alpha", "0.4.9.1-alpha-dev" (a trailing "(git-…)" part and
// period are ignored).
func ParseVersion(s string) (Version, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	// tor --version ends its sentence with a dot: "Tor version 0.4.9.11."
	s = strings.TrimRight(s, ".")
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%w: %q is not a tor version", ErrBadVersion, s)
	}
	var v Version
	for i, p := range []*int{&v.Major, &v.Minor, &v.Micro, &v.Patch} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return Version{}, fmt.Errorf("%w: %q: %w", ErrBadVersion, s, err)
		}
		*p = n
	}
	v.Status = m[5]
	return v, nil
}

// String formats v the way tor does.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d.%d", v.Major, v.Minor, v.Micro, v.Patch)
	if v.Status != "" {
		s += "-" + v.Status
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than
// w. A release sorts after its alpha and rc versions of the same number.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]int{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Micro, w.Micro}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			if d[0] < d[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.Status == w.Status:
		return 0
	case v.Status == "":
		return 1
	case w.Status == "":
		return -1
	}
	return strings.Compare(v.Status, w.Status)
}

// checkVersion returns an error matching [ErrTooOld] when v is older than
// [MinVersion].
func checkVersion(v Version) error {
	if min := MinVersion(); v.Compare(min) < 0 {
		return fmt.Errorf("%w: found tor %s, gotorcon needs %s or newer; upgrade it (%s)", ErrTooOld, v, min, installHint())
	}
	return nil
}

type versionKey struct {
	path  string
	size  int64
	mtime time.Time
}

var versionCache sync.Map // versionKey -> Version

// ReadVersion runs "path --version" and parses its first line
// ("Tor version 0.4.9.11."). It returns an error matching [ErrTooOld] for a
// version older than [MinVersion] and one matching [ErrBadVersion] when the
// output is not tor's. Results are cached per binary (path, size and
// modification time), so only the first call costs an exec.
func ReadVersion(ctx context.Context, path string) (Version, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Version{}, fmt.Errorf("process: tor version: %w", err)
	}
	key := versionKey{path, fi.Size(), fi.ModTime()}
	if v, ok := versionCache.Load(key); ok {
		if err := checkVersion(v.(Version)); err != nil {
			return v.(Version), fmt.Errorf("process: %s: %w", path, err)
		}
		return v.(Version), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	v, perr := parseVersionOutput(out.Bytes())
	if perr != nil {
		if runErr != nil {
			perr = fmt.Errorf("%w (%w)", perr, runErr)
		}
		if ctx.Err() != nil {
			perr = fmt.Errorf("%w: %w", perr, ctx.Err())
		}
		return Version{}, fmt.Errorf("process: %s --version: %w", path, perr)
	}
	versionCache.Store(key, v)
	if err := checkVersion(v); err != nil {
		return v, fmt.Errorf("process: %s: %w", path, err)
	}
	return v, nil
}

func parseVersionOutput(out []byte) (Version, error) {
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "Tor version "); ok {
			return ParseVersion(rest)
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if len(first) > 120 {
		first = first[:120] + "…"
	}
	return Version{}, fmt.Errorf("%w: output %q has no \"Tor version\" line", ErrBadVersion, first)
}
