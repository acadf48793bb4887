package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Knowing whether a torrc is ours.
//
// SAVECONF makes tor overwrite the file it was started with (GETINFO
// config-file), so a program must not send it to a tor whose torrc belongs
// to someone else: the system's /etc/tor/torrc, or a file a user wrote.
// A marker line inside the torrc does not work, because SAVECONF rewrites
// the file and drops every comment: after the first Save the marker is
// gone and the next Save would be refused. A registry of paths kept in
// memory does not survive the program (a tor launched earlier and attached
// to again). So the mark is a small sidecar file next to the torrc,
// "<torrc>.gotorcon", which tor never touches: it records the absolute
// path of the torrc it vouches for, so a sidecar copied or renamed
// elsewhere does not count. Only a process that can write in the torrc's
// directory can create one, the same process that could edit the torrc.

// ownedSuffix is appended to a torrc's path to name its ownership sidecar.
const ownedSuffix = ".gotorcon"

const ownedHeader = "# This torrc was written by github.com/gotorcon/tor, which may rewrite it with SAVECONF.\n"

// ErrNotOurTorrc is returned (wrapped) by Save when tor's torrc was not
// written by this library (it has no ownership sidecar), so SAVECONF could
// overwrite somebody else's file.
var ErrNotOurTorrc = errors.New("config: tor's torrc was not written by this library")

// WriteOwnedTorrc writes t to path (mode 0600) and marks the file as ours
// (see markOwned), so that a TorConfig may later Save into it. Launchers
// write the torrc of a tor they start with it.
func WriteOwnedTorrc(path string, t *Torrc) error {
	if err := t.WriteFile(path); err != nil {
		return err
	}
	return markOwned(path)
}

// markOwned records that the torrc at path belongs to this library by
// writing the sidecar file path+ownedSuffix (mode 0600). The torrc itself
// need not exist yet (tor started with --ignore-missing-torrc creates it
// on SAVECONF).
func markOwned(path string) error {
	abs, err := canonicalPath(path)
	if err != nil {
		return fmt.Errorf("config: mark %s as owned: %w", path, err)
	}
	body := ownedHeader + "torrc " + abs + "\n"
	if err := os.WriteFile(path+ownedSuffix, []byte(body), 0o600); err != nil {
		return fmt.Errorf("config: mark %s as owned: %w", path, err)
	}
	return nil
}

// isOwnedTorrc reports whether the torrc at path was written by this
// library: its sidecar exists, is a regular file that neither group nor
// others may write, and names this very path. A missing sidecar is not an error (false, nil).
func isOwnedTorrc(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	abs, err := canonicalPath(path)
	if err != nil {
		return false, err
	}
	side := path + ownedSuffix
	st, err := os.Lstat(side)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o022 != 0 {
		// Not a file we wrote, or one others could have written.
		return false, nil
	}
	b, err := os.ReadFile(side)
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "torrc "); ok {
			return rest == abs, nil
		}
	}
	return false, nil
}

// canonicalPath returns path made absolute, with symbolic links in its
// directory resolved (the file itself may not exist yet).
func canonicalPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, base := filepath.Split(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	return filepath.Join(dir, base), nil
}
