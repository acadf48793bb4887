//go:build unix

package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/leakcheck"
)

const childEnv = "GOTORCON_PROCESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		runChild(dir)
		return
	}
	os.Exit(m.Run())
}

// runChild is the program of TestOwnershipSIGKILL: it starts tor, says
// where it is, and waits to be killed.
func runChild(dir string) {
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: dir})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("PID %d DIR %s\n", p.Pid(), filepath.Dir(p.TorrcPath()))
	select {}
}

func TestStartControlClose(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	if !leakcheck.PidAlive(pid) {
		t.Fatalf("tor pid %d not alive after Start", pid)
	}
	if v := p.Version(); v.Compare(MinVersion()) < 0 {
		t.Errorf("version %v", v)
	}

	// The owning connection is authenticated from the start.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := p.Control().GetInfo(ctx, "version", "status/bootstrap-phase", "net/listeners/socks")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info[1], "PROGRESS=") {
		t.Errorf("bootstrap-phase %q", info[1])
	}

	// A second connection authenticates with the cookie.
	network, addr := p.ControlAddr()
	if network != "unix" || !strings.HasPrefix(addr, parent) {
		t.Errorf("ControlAddr = %s %s, want a unix socket under %s", network, addr, parent)
	}
	c, err := control.Connect(ctx, network, addr, []control.AuthOption{control.WithCookieFile(p.CookieFile())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Our torrc: our defaults, no system torrc.
	torrc, err := os.ReadFile(p.TorrcPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DisableNetwork 1", "CookieAuthentication 1", "SocksPort auto ExtendedErrors IsolateSOCKSAuth", "__ReloadTorrcOnSIGHUP 0", "__OwningControllerProcess "} {
		if !strings.Contains(string(torrc), want) {
			t.Errorf("torrc lacks %q:\n%s", want, torrc)
		}
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if args := strings.Split(string(cmdline), "\x00"); len(cmdline) > 0 && !containsSeq(args, "--defaults-torrc") {
		t.Errorf("tor's argv lacks --defaults-torrc: %q", args)
	}

	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	if leakcheck.PidAlive(pid) {
		t.Errorf("tor pid %d alive after Close", pid)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err after Close = %v, want nil", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Close")
	}
	checkEmptyDir(t, parent)
	leakcheck.Check(t, 2*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor/process.", "os/exec."))
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func containsSeq(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

func TestCloseFromManyGoroutines(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Close()
			if leakcheck.PidAlive(p.Pid()) {
				errs <- fmt.Errorf("Close returned while tor runs")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkEmptyDir(t, parent)
}

func TestExitOnOwnerClose(t *testing.T) {
	needTor(t)
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	p.Control().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = waitExit(ctx, p)
	t.Logf("tor exited %v after its owning connection closed", time.Since(start))
	if !errors.Is(err, ErrExited) {
		t.Fatalf("Wait = %v, want ErrExited", err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Err != nil {
		t.Errorf("want a clean exit, got %v", err)
	}
}

func TestKilledTorReportsExit(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(p.Pid(), syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = waitExit(ctx, p)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Wait = %v, want ErrExited by a signal", err)
	}
	if len(p.out.last()) == 0 {
		t.Error("no output lines recorded")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkEmptyDir(t, parent)
}

func TestDataDirKept(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	data := filepath.Join(t.TempDir(), "my data")
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	if p.DataDir() != data || p.CookieFile() != filepath.Join(data, "control_auth_cookie") {
		t.Errorf("DataDir %q CookieFile %q", p.DataDir(), p.CookieFile())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "state")); err != nil {
		t.Errorf("data dir not kept: %v", err)
	}
	checkEmptyDir(t, parent)

	// The kept directory is locked while a tor runs on it: a second Start
	// is refused with a clear error, and Close releases the lock.
	p1, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Torrc: offline(), TempDir: parent, DataDir: data})
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("second Start on %s: %v, want ErrDataDirInUse naming our pid", data, err)
	}
	if err := p1.Close(); err != nil {
		t.Fatal(err)
	}
	p2, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent, DataDir: data})
	if err != nil {
		t.Fatalf("Start after Close released the lock: %v", err)
	}
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	checkEmptyDir(t, parent)

	_, err = Start(context.Background(), Options{
		Torrc:   offline().Add("DataDirectory", "/elsewhere"),
		DataDir: data,
		TempDir: parent,
	})
	if !errors.Is(err, config.ErrConflict) {
		t.Errorf("DataDir vs DataDirectory: %v, want ErrConflict", err)
	}
	checkEmptyDir(t, parent)
}

func TestLongTempDirUsesShortSocketDir(t *testing.T) {
	needTor(t)
	parent := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	network, addr := p.ControlAddr()
	if network != "unix" || len(addr) > maxSunPath || strings.HasPrefix(addr, parent) {
		t.Errorf("ControlAddr %s %s: want a short socket outside %s", network, addr, parent)
	}
	sockDir := filepath.Dir(addr)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sockDir); !os.IsNotExist(err) {
		t.Errorf("short socket dir %s left behind (%v)", sockDir, err)
	}
	checkEmptyDir(t, parent)
}

func TestCallerOptionsWin(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	torrc := offline().
		Add("ControlPort", "auto").
		Add("SocksPort", "0").
		Add("Log", "warn stdout")
	p, err := Start(context.Background(), Options{Torrc: torrc, TempDir: parent})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if network, addr := p.ControlAddr(); network != "tcp" || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("ControlAddr = %s %s, want the TCP ControlPort", network, addr)
	}
	b, _ := os.ReadFile(p.TorrcPath())
	if strings.Contains(string(b), "ControlSocket") || strings.Contains(string(b), "SocksPort auto") || strings.Contains(string(b), "notice stdout") {
		t.Errorf("defaults overrode the caller's options:\n%s", b)
	}
	if torrc.Has("CookieAuthentication") {
		t.Error("Start modified the caller's Torrc")
	}
}

// noFDCreator runs tor without an owning descriptor, as a Creator on a
// platform without socket pairs would.
type noFDCreator struct{ path string }

func (c noFDCreator) Create(ctx context.Context, cmd *Cmd) (Runner, error) {
	ec := exec.Command(c.path, cmd.Args...)
	ec.Stdout, ec.Stderr = cmd.Output, cmd.Output
	ec.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &noFDRunner{cmd: ec}, nil
}

type noFDRunner struct{ cmd *exec.Cmd }

func (r *noFDRunner) Control() (net.Conn, error) { return nil, ErrNoControl }
func (r *noFDRunner) Start() error               { return r.cmd.Start() }
func (r *noFDRunner) Wait() error                { return r.cmd.Wait() }
func (r *noFDRunner) Pid() int                   { return r.cmd.Process.Pid }
func (r *noFDRunner) Terminate() error           { return r.cmd.Process.Signal(syscall.SIGTERM) }
func (r *noFDRunner) Kill() error                { return r.cmd.Process.Kill() }

func TestTakeOwnershipWithoutDescriptor(t *testing.T) {
	path := needTor(t)
	parent := t.TempDir()
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: parent, Creator: noFDCreator{path}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	// TAKEOWNERSHIP: tor exits when this connection closes.
	start := time.Now()
	p.Control().Close()
	if err := waitExit(ctx, p); !errors.Is(err, ErrExited) {
		t.Fatalf("Wait = %v", err)
	}
	t.Logf("tor exited %v after the TAKEOWNERSHIP connection closed", time.Since(start))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	checkEmptyDir(t, parent)
}

// TestOwnershipSIGKILL: a Go program that started tor is SIGKILLed; tor
// must exit within seconds, and the next sweep removes its directory.
func TestOwnershipSIGKILL(t *testing.T) {
	needTor(t)
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+parent)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v (%q)", err, line)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscanf(line, "PID %d DIR %s", &pid, &dir); err != nil {
		t.Fatalf("child said %q", line)
	}
	if !leakcheck.PidAlive(pid) {
		t.Fatalf("tor %d not running", pid)
	}
	t.Cleanup(func() {
		if leakcheck.PidAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	took := leakcheck.WaitPidGone(t, pid, 5*time.Second)
	t.Logf("tor exited %v after its Go program was SIGKILLed", took)

	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the dead program's directory %s: %v", dir, err)
	}
	removed := removeStaleDirs(nil, parent)
	if len(removed) != 1 || removed[0] != dir {
		t.Errorf("sweep removed %v, want [%s]", removed, dir)
	}
	checkEmptyDir(t, parent)
}

func TestSweepKeepsLiveDirs(t *testing.T) {
	parent := t.TempDir()
	live, err := newPrivateDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.remove()
	// A directory being created (no lock yet) is kept while young.
	young := filepath.Join(parent, dirPrefix+"young")
	os.Mkdir(young, 0o700)
	// An unlocked lock file with a pid: its owner died.
	dead := filepath.Join(parent, dirPrefix+"dead")
	os.Mkdir(dead, 0o700)
	os.WriteFile(filepath.Join(dead, lockName), []byte("999999999\n"), 0o600)
	// Not ours.
	other := filepath.Join(parent, "other")
	os.Mkdir(other, 0o700)

	removed := removeStaleDirs(nil, parent)
	if len(removed) != 1 || removed[0] != dead {
		t.Errorf("removed %v, want only %s", removed, dead)
	}
	for _, d := range []string{live.path, young, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	old := time.Now().Add(-2 * staleUnlockedAge)
	os.Chtimes(young, old, old)
	if removed := removeStaleDirs(nil, parent); len(removed) != 1 || removed[0] != young {
		t.Errorf("removed %v, want the old unlocked %s", removed, young)
	}
}

// Failure paths with fake tor executables: each gives a clear error before
// its deadline and leaves no process and no directory behind.
func TestFakeTorFailures(t *testing.T) {
	const okVersion = `echo "Tor version 0.4.9.11."`
	cases := []struct {
		name      string
		version   string
		body      string
		timeout   time.Duration
		want      []error
		wantText  string
		maxTime   time.Duration
		noProcess bool // the script never runs past --version
	}{
		{
			name:     "exits at once with an err line",
			version:  okVersion,
			body:     `echo "Nov 22 08:00:00.000 [warn] Failed to parse/validate config: Unknown option 'Bogus'."; echo "Nov 22 08:00:00.000 [err] Reading config failed--see warnings above."; exit 1`,
			want:     []error{ErrExited},
			wantText: "Reading config failed",
			maxTime:  3 * time.Second,
		},
		{
			name:     "never answers",
			version:  okVersion,
			body:     `echo "Nov 22 08:00:00.000 [notice] thinking"; exec sleep 600`,
			timeout:  time.Second,
			want:     []error{ErrStartTimeout},
			wantText: "thinking",
			maxTime:  4 * time.Second,
		},
		{
			name:     "garbage on the control connection",
			version:  okVersion,
			body:     `eval "printf 'HTTP/1.0 400 Bad Request\r\n\r\n' >&$owning"; exec sleep 600`,
			want:     []error{control.ErrProtocol},
			wantText: "HTTP/1.0",
			maxTime:  3 * time.Second,
		},
		{
			name:     "garbage output then exit",
			version:  okVersion,
			body:     `head -c 5000 /dev/urandom; printf '\n\001\002 nonsense\n'; exit 3`,
			want:     []error{ErrExited},
			wantText: "exit status 3",
			maxTime:  3 * time.Second,
		},
		{
			name:      "garbage version",
			version:   `echo "Usage: something else"; printf '\377\376'`,
			want:      []error{ErrBadVersion},
			wantText:  "Usage: something else",
			maxTime:   3 * time.Second,
			noProcess: true,
		},
		{
			name:      "too old",
			version:   `echo "Tor version 0.2.9.17."`,
			want:      []error{ErrTooOld},
			wantText:  "0.2.9.17",
			maxTime:   3 * time.Second,
			noProcess: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, pidfile := fakeTor(t, tc.version, tc.body)
			parent := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			p, err := Start(ctx, Options{Path: path, TempDir: parent, StartTimeout: tc.timeout, Torrc: offline()})
			took := time.Since(start)
			if err == nil {
				p.Close()
				t.Fatal("Start succeeded")
			}
			t.Logf("after %v: %v", took, err)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error does not match %v", w)
				}
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error lacks %q", tc.wantText)
			}
			if took > tc.maxTime {
				t.Errorf("took %v, want under %v", took, tc.maxTime)
			}
			pid := readPidFile(t, pidfile)
			if tc.noProcess != (pid == 0) {
				t.Errorf("script ran as pid %d; noProcess=%v", pid, tc.noProcess)
			}
			if pid != 0 && leakcheck.PidAlive(pid) {
				t.Errorf("fake tor %d still running", pid)
			}
			checkEmptyDir(t, parent)
		})
	}
}

func TestCancelledStart(t *testing.T) {
	path, pidfile := fakeTor(t, `echo "Tor version 0.4.9.11."`, `exec sleep 600`)
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := Start(ctx, Options{Path: path, TempDir: parent, Torrc: offline()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if pid := readPidFile(t, pidfile); pid == 0 || leakcheck.PidAlive(pid) {
		t.Errorf("fake tor pid %d: not started or still alive", pid)
	}
	checkEmptyDir(t, parent)
}

func TestNotFound(t *testing.T) {
	_, err := Start(context.Background(), Options{Path: "/nonexistent/tor"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start = %v, want ErrNotFound", err)
	}
}

// TestGeoIPInstalled checks that a launched tor reads tor's own GeoIP
// databases (Debian's tor-geoipdb), so that country rules work.
func TestGeoIPInstalled(t *testing.T) {
	needTor(t)
	if _, err := os.Stat("/usr/share/tor/geoip"); err != nil {
		t.Skipf("tor's GeoIP database is not installed (apt-get install tor-geoipdb): %v", err)
	}
	p, err := Start(context.Background(), Options{Torrc: offline(), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := []string{"ip-to-country/ipv4-available", "ip-to-country/ipv6-available",
		"ip-to-country/8.8.8.8", "ip-to-country/193.0.6.139", "ip-to-country/2001:4860:4860::8888"}
	want := []string{"1", "1",
		"us", // Google's resolver
		"nl", // RIPE NCC, Amsterdam
		"us"}
	info, err := p.Control().GetInfo(ctx, keys...)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if info[i] != want[i] {
			t.Errorf("GETINFO %s = %q, want %q", k, info[i], want[i])
		}
	}
	// A country rule is accepted and tor recognizes the code.
	if err := p.Control().SetConf(ctx, control.ConfEntry{Key: "ExcludeNodes", Value: "{ru}"}, control.ConfEntry{Key: "StrictNodes", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	for _, l := range p.out.last() {
		if strings.Contains(l, "is not recognized") {
			t.Errorf("tor did not recognize a country: %s", l)
		}
	}
}

// waitExit waits until tor exits or ctx ends, and returns p.Err or the
// context's error.
func waitExit(ctx context.Context, p *Process) error {
	select {
	case <-p.Done():
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
