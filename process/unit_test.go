package process

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0.4.9.11", "0.4.9.11", true},
		{"0.4.9.11.", "0.4.9.11", true},
		{"0.4.9.1-alpha-dev (git-0123456789abcdef)", "0.4.9.1-alpha-dev", true},
		{"0.4.8.10-rc", "0.4.8.10-rc", true},
		{"0.3.5", "0.3.5.0", true},
		{"", "", false},
		{"garbage", "", false},
		{"1.2", "", false},
		{"99999999999999999999.1.1.1", "", false},
	} {
		v, err := ParseVersion(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseVersion(%q) error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadVersion) {
				t.Errorf("ParseVersion(%q) = %v, want ErrBadVersion", tc.in, err)
			}
			continue
		}
		if v.String() != tc.want {
			t.Errorf("ParseVersion(%q) = %s, want %s", tc.in, v, tc.want)
		}
	}
	ordered := []string{"0.2.9.17", "0.4.5.0-alpha", "0.4.5.0-rc", "0.4.5.0", "0.4.9.11", "1.0.0.0"}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseVersion(ordered[i])
			b, _ := ParseVersion(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s = %d, want %d", a, b, got, want)
			}
		}
	}
	old, _ := ParseVersion("0.4.4.9")
	if err := checkVersion(old); !errors.Is(err, ErrTooOld) {
		t.Errorf("checkVersion(0.4.4.9) = %v", err)
	} else {
		// The version found, the one needed, and what to do.
		for _, want := range []string{"found tor 0.4.4.9", "needs 0.4.5.0 or newer", "upgrade it (" + installHint() + ")"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("checkVersion error %q lacks %q", err, want)
			}
		}
	}
	if runtime.GOOS == "linux" && !strings.Contains(installHint(), "apt-get install tor") {
		t.Errorf("installHint on linux = %q", installHint())
	}
	if err := checkVersion(MinVersion()); err != nil {
		t.Errorf("checkVersion(MinVersion) = %v", err)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"0.4.9.11", "0.4.9.1-alpha-dev (git-x)", "1.2.3", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		w, err := ParseVersion(v.String())
		if err != nil || w.Compare(v) != 0 || w.String() != v.String() {
			t.Fatalf("%q → %v → %v %v", s, v, w, err)
		}
	})
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "mytor")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	notExe := filepath.Join(dir, "plain")
	os.WriteFile(notExe, nil, 0o644)

	if got, err := Find(exe); err != nil || got != exe {
		t.Errorf("Find(explicit) = %q, %v", got, err)
	}
	if runtime.GOOS != "windows" {
		if _, err := Find(notExe); !errors.Is(err, ErrNotFound) {
			t.Errorf("Find(not executable) = %v", err)
		}
	}
	t.Setenv(envTor, exe)
	if got, err := Find(""); err != nil || got != exe {
		t.Errorf("Find with $%s = %q, %v", envTor, got, err)
	}
	t.Setenv(envTor, filepath.Join(dir, "missing"))
	if _, err := Find(""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), envTor) {
		t.Errorf("Find with a bad $%s = %v", envTor, err)
	}
	t.Setenv(envTor, "")
	t.Setenv("PATH", dir)
	os.WriteFile(filepath.Join(dir, torExe()), []byte("#!/bin/sh\n"), 0o755)
	if got, err := Find(""); err != nil || got != filepath.Join(dir, torExe()) {
		t.Errorf("Find on PATH = %q, %v", got, err)
	}
}

func TestOutputRing(t *testing.T) {
	o := newOutput(3, nil, nil)
	o.Write([]byte("a [notice] one\nb [warn] two\nc [notice] th"))
	o.Write([]byte("ree\nd [err] four\r\ne [warn] You are running Tor as root.\npartial"))
	o.flush()
	if got := strings.Join(o.last(), "|"); got != "d [err] four|e [warn] You are running Tor as root.|partial" {
		t.Errorf("last = %q", got)
	}
	if got := strings.Join(o.problemLines(), "|"); got != "b [warn] two|d [err] four" {
		t.Errorf("problems = %q", got)
	}
	o.Write([]byte("f [warn] two\ng [notice] five\n"))
	if got := strings.Join(o.problemLines(), "|"); got != "d [err] four|f [warn] two" {
		t.Errorf("a repeated warning is kept once, at its latest place: problems = %q", got)
	}
	long := strings.Repeat("x", 3*maxLineLen)
	o.Write([]byte(long))
	o.flush()
	for _, l := range o.last() {
		if len(l) > maxLineLen {
			t.Errorf("line of %d bytes kept", len(l))
		}
	}
	if lineMessage("Nov 22 08:11:26.483 [notice] Bootstrapped 0%") != "Bootstrapped 0%" {
		t.Error("lineMessage")
	}
}

func TestParseListener(t *testing.T) {
	for in, want := range map[string][2]string{
		`unix:/tmp/a b"c`: {"unix", `/tmp/a b"c`},
		"127.0.0.1:9051":  {"tcp", "127.0.0.1:9051"},
		"[::1]:9051":      {"tcp", "[::1]:9051"},
	} {
		if n, a := parseListener(in); n != want[0] || a != want[1] {
			t.Errorf("parseListener(%q) = %s %s, want %s %s", in, n, a, want[0], want[1])
		}
	}
}
