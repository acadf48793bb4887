// Package testtor starts a lone tor for integration tests: offline
// (DisableNetwork 1), with its own torrc and a temporary data directory, a
// TCP control port on 127.0.0.1 and a unix control socket, cookie
// authentication and optionally a control password.
//
//	tor := testtor.Start(t, testtor.Options{Password: "secret"})
//	c := tor.Connect(t) // authenticated *control.Conn, closed in t.Cleanup
//
// The tor is killed and reaped, and its directory removed, in t.Cleanup.
// It also exits by itself if the test binary dies (__OwningControllerProcess).
// If the tor binary is missing the test fails (it is not skipped): "make
// test" installs tor.
package testtor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// StartTimeout bounds how long Start waits for tor to open its control
// port.
const StartTimeout = 60 * time.Second

// Options configure the test tor.
type Options struct {
	// Password, when not empty, sets HashedControlPassword to its hash.
	// The password itself is never written to the torrc or logged.
	Password string
	// NoCookie turns cookie authentication off (with no Password, tor then
	// offers only NULL authentication).
	NoCookie bool
	// Extra torrc lines, appended after the defaults (and able to override
	// single-valued ones).
	Extra []config.Option
	// Binary is the tor executable; "tor" from PATH when empty.
	Binary string
	// ExtraFiles are passed to tor as file descriptors 3, 4, ... (for
	// example one end of a socket pair for __OwningControllerFD 3).
	ExtraFiles []*os.File
}

// Tor is a running test tor.
type Tor struct {
	// Dir is the temporary directory holding everything (mode 0700).
	Dir string
	// DataDir is tor's DataDirectory.
	DataDir string
	// Torrc is the path of the generated torrc.
	Torrc string
	// ControlAddr is the TCP control port, "127.0.0.1:PORT".
	ControlAddr string
	// ControlSocket is the path of the unix control socket.
	ControlSocket string
	// CookieFile is the control auth cookie ("" with NoCookie).
	CookieFile string
	// Password is the control password ("" when none).
	Password string
	// PID is tor's process ID.
	PID int

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	out     *syncBuffer
	stop    sync.Once
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // enough for diagnostics
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts a tor for t and arranges for it to be stopped in
// t.Cleanup. It fails t if tor is missing or does not come up.
func Start(t testing.TB, opts Options) *Tor {
	t.Helper()
	tor, err := New(opts)
	if err != nil {
		t.Fatalf("testtor: %v", err)
	}
	t.Cleanup(func() {
		if err := tor.Close(); err != nil {
			t.Logf("testtor: %v", err)
		}
	})
	return tor
}

// New starts a tor; the caller must Close it. Use it from TestMain to share
// one tor between tests; otherwise prefer Start.
func New(opts Options) (*Tor, error) {
	bin := opts.Binary
	if bin == "" {
		bin = "tor"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("tor is not installed (%v): install it with `sudo apt-get install -y tor` or run `make test`, which does", err)
	}
	// A short directory under /tmp: a unix socket path must stay under 107
	// bytes, which t.TempDir() paths (named after the test) can exceed.
	dir, err := os.MkdirTemp("", "tt")
	if err != nil {
		return nil, err
	}
	tt := &Tor{
		Dir:           dir,
		DataDir:       filepath.Join(dir, "data"),
		Torrc:         filepath.Join(dir, "torrc"),
		ControlSocket: filepath.Join(dir, "ctl"),
		Password:      opts.Password,
		exited:        make(chan struct{}),
		out:           &syncBuffer{},
	}
	ok := false
	defer func() {
		if !ok {
			tt.Close()
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(tt.DataDir, 0o700); err != nil {
		return nil, err
	}
	portFile := filepath.Join(dir, "port")
	defaults := filepath.Join(dir, "defaults")
	if err := os.WriteFile(defaults, nil, 0o600); err != nil {
		return nil, err
	}

	var rc config.Torrc
	rc.Add("DataDirectory", tt.DataDir)
	rc.Add("DisableNetwork", "1")
	rc.Add("SocksPort", "0")
	rc.Add("ControlPort", "auto")
	rc.Add("ControlPortWriteToFile", portFile)
	rc.Add("ControlSocket", tt.ControlSocket)
	rc.Add("GeoIPFile", "/dev/null")
	rc.Add("GeoIPv6File", "/dev/null")
	rc.Add("AvoidDiskWrites", "1")
	rc.Add("Log", "notice stdout")
	rc.Add("__OwningControllerProcess", strconv.Itoa(os.Getpid()))
	if opts.NoCookie {
		rc.Add("CookieAuthentication", "0")
	} else {
		rc.Add("CookieAuthentication", "1")
		tt.CookieFile = filepath.Join(tt.DataDir, "control_auth_cookie")
	}
	if opts.Password != "" {
		h, err := control.HashPassword(opts.Password)
		if err != nil {
			return nil, err
		}
		rc.Add("HashedControlPassword", h)
	}
	for _, o := range opts.Extra {
		rc.Add(o.Key, o.Value)
	}
	if err := rc.WriteFile(tt.Torrc); err != nil {
		return nil, err
	}

	tt.cmd = exec.Command(path, "-f", tt.Torrc, "--defaults-torrc", defaults, "--ignore-missing-torrc")
	tt.cmd.Stdout = tt.out
	tt.cmd.Stderr = tt.out
	tt.cmd.Dir = dir
	tt.cmd.ExtraFiles = opts.ExtraFiles
	if err := tt.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	tt.PID = tt.cmd.Process.Pid
	go func() {
		tt.waitErr = tt.cmd.Wait()
		close(tt.exited)
	}()

	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(portFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			// "PORT=127.0.0.1:NNNN" and "UNIX_PORT=/path" lines.
			for _, line := range strings.Split(string(b), "\n") {
				if addr, found := strings.CutPrefix(line, "PORT="); found {
					tt.ControlAddr = addr
				}
			}
			if tt.ControlAddr == "" {
				return nil, fmt.Errorf("no PORT= line in control port file %q", b)
			}
			if _, err := os.Stat(tt.ControlSocket); err == nil {
				break
			}
		}
		select {
		case <-tt.exited:
			return nil, fmt.Errorf("tor exited before opening its control port (%v); its output:\n%s", tt.waitErr, tt.out.String())
		case <-deadline.C:
			return nil, fmt.Errorf("tor did not open its control port within %v; its output:\n%s", StartTimeout, tt.out.String())
		case <-tick.C:
		}
	}
	ok = true
	return tt, nil
}

// Exited is closed when the tor process has exited.
func (tt *Tor) Exited() <-chan struct{} { return tt.exited }

// Running reports whether the tor process is still running.
func (tt *Tor) Running() bool {
	select {
	case <-tt.exited:
		return false
	default:
		return true
	}
}

// Output returns what tor has logged to stdout and stderr so far.
func (tt *Tor) Output() string { return tt.out.String() }

// Close kills tor, waits for it to exit and removes its directory. It is
// safe to call more than once.
func (tt *Tor) Close() error {
	var err error
	tt.stop.Do(func() {
		if tt.cmd != nil && tt.cmd.Process != nil {
			select {
			case <-tt.exited:
			default:
				if kerr := tt.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
					err = fmt.Errorf("killing tor (pid %d): %w", tt.PID, kerr)
				}
				<-tt.exited
			}
		}
		if rerr := os.RemoveAll(tt.Dir); rerr != nil && err == nil {
			err = rerr
		}
	})
	return err
}

// Dial opens an unauthenticated connection to the TCP control port
// (network "tcp") or the unix control socket (network "unix"); it is
// closed in t.Cleanup.
func (tt *Tor) Dial(t testing.TB, network string, opts ...control.Option) *control.Conn {
	t.Helper()
	addr := tt.ControlAddr
	if network == "unix" {
		addr = tt.ControlSocket
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, network, addr, opts...)
	if err != nil {
		t.Fatalf("testtor: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connect opens an authenticated connection over the unix control socket
// (cookie authentication, or the password, or NULL); it is closed in
// t.Cleanup.
func (tt *Tor) Connect(t testing.TB, opts ...control.Option) *control.Conn {
	t.Helper()
	c := tt.Dial(t, "unix", opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var auth []control.AuthOption
	if tt.Password != "" {
		auth = append(auth, control.WithPassword(tt.Password))
	}
	if err := c.Authenticate(ctx, auth...); err != nil {
		t.Fatalf("testtor: %v", err)
	}
	return c
}

// WriteExecutable writes data to path with mode 0755 while no process can
// be forked (syscall.ForkLock held). A child forked by a parallel test
// while the file is open for writing keeps it open until the child execs,
// and running the file in that window fails with ETXTBSY ("text file
// busy", golang/go#22315); seen in make test with the fake tor scripts.
func WriteExecutable(path string, data []byte) error {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	return os.WriteFile(path, data, 0o755)
}
