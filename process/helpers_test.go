package process

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/internal/testtor"
)

// offline is the torrc of every test tor: no network at all.
func offline() *config.Torrc { return new(config.Torrc).Add("DisableNetwork", "1") }

func needTor(t testing.TB) string {
	t.Helper()
	path, err := Find("")
	if err != nil {
		t.Fatalf("these tests need tor: %v", err)
	}
	return path
}

// checkEmptyDir fails when dir has entries.
func checkEmptyDir(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Fatalf("%s is not empty: %v", dir, names)
	}
}

// fakeTor writes a shell script that answers --version with version and
// otherwise runs body. The script writes its pid to the returned pidfile.
func fakeTor(t testing.TB, version, body string) (path, pidfile string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "tor")
	pidfile = filepath.Join(dir, "pid")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = "--version" ]; then
%s
exit 0
fi
echo $$ > %s
owning=
while [ $# -gt 0 ]; do
	if [ "$1" = "__OwningControllerFD" ]; then owning=$2; fi
	shift
done
%s
`, version, pidfile, body)
	if err := testtor.WriteExecutable(path, []byte(script)); err != nil {
		t.Fatal(err)
	}
	return path, pidfile
}

func readPidFile(t testing.TB, pidfile string) int {
	t.Helper()
	f, err := os.Open(pidfile)
	if err != nil {
		return 0
	}
	defer f.Close()
	var pid int
	fmt.Fscan(bufio.NewReader(f), &pid)
	return pid
}
