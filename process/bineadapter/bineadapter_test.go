//go:build linux

package bineadapter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bine "github.com/cretz/bine/process"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/process"
	"github.com/gotorcon/tor/process/bineadapter"
)

func offline() *config.Torrc { return new(config.Torrc).Add("DisableNetwork", "1") }

func torPath(t *testing.T) string {
	p, err := process.Find("")
	if err != nil {
		t.Fatalf("these tests need tor: %v", err)
	}
	return p
}

// getinfo sends one GETINFO on conn and returns the raw reply.
func getinfo(t *testing.T, conn *control.Conn, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := conn.GetInfoValue(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkEmpty(t *testing.T, dir string) {
	t.Helper()
	if es, _ := os.ReadDir(dir); len(es) > 0 {
		t.Errorf("%s not empty: %v", dir, es)
	}
}

// bine's own exec Creator: the adapter still passes the owning descriptor.
func TestCmdCreatorFunc(t *testing.T) {
	parent := t.TempDir()
	p, err := process.Start(context.Background(), process.Options{
		Creator: bineadapter.New(bine.NewCreator(torPath(t))),
		Torrc:   offline(),
		TempDir: parent,
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), "__OwningControllerFD") {
		t.Errorf("tor's argv lacks __OwningControllerFD: %q", cmdline)
	}
	if r := getinfo(t, p.Control(), "version"); !strings.HasPrefix(r, "0.4.") {
		t.Errorf("GETINFO version: %q", r)
	}
	if len(p.Warnings()) == 0 { // its last lines when it warned of nothing
		t.Error("tor's output was not captured")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if leakcheck.PidAlive(pid) {
		t.Errorf("tor %d alive after Close", pid)
	}
	checkEmpty(t, parent)
}

// fakeEmbedded is a bine Creator that behaves like go-libtor: its Process
// has no pid for the caller and hands out an owning control connection
// (here a socket pair given to a real tor, as tor_main_configuration_
// setup_control_socket does in-process).
type fakeEmbedded struct {
	path       string
	noConn     bool // answer ErrControlConnUnsupported, like an old tor
	failNew    error
	mu         sync.Mutex
	pids       []int
	gotArgs    [][]string
	ctxOfStart context.Context
}

func (f *fakeEmbedded) New(ctx context.Context, args ...string) (bine.Process, error) {
	if f.failNew != nil {
		return nil, f.failNew
	}
	f.mu.Lock()
	f.gotArgs = append(f.gotArgs, args)
	f.ctxOfStart = ctx
	f.mu.Unlock()
	return &fakeProcess{f: f, ctx: ctx, args: args}, nil
}

type fakeProcess struct {
	f     *fakeEmbedded
	ctx   context.Context
	args  []string
	child *os.File
	cmd   *exec.Cmd
}

func (p *fakeProcess) EmbeddedControlConn() (net.Conn, error) {
	if p.f.noConn {
		return nil, bine.ErrControlConnUnsupported
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours := os.NewFile(uintptr(fds[0]), "ours")
	defer ours.Close()
	p.child = os.NewFile(uintptr(fds[1]), "tor")
	return net.FileConn(ours)
}

func (p *fakeProcess) Start() error {
	args := p.args
	if p.child != nil {
		args = append(append([]string(nil), args...), "__OwningControllerFD", "3")
	}
	p.cmd = exec.CommandContext(p.ctx, p.f.path, args...)
	if p.child != nil {
		p.cmd.ExtraFiles = []*os.File{p.child}
	}
	err := p.cmd.Start()
	if p.child != nil {
		p.child.Close()
	}
	if err == nil {
		p.f.mu.Lock()
		p.f.pids = append(p.f.pids, p.cmd.Process.Pid)
		p.f.mu.Unlock()
	}
	return err
}

func (p *fakeProcess) Wait() error { return p.cmd.Wait() }

func (f *fakeEmbedded) lastPid() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pids) == 0 {
		return 0
	}
	return f.pids[len(f.pids)-1]
}

func TestEmbeddedControlConn(t *testing.T) {
	parent := t.TempDir()
	fake := &fakeEmbedded{path: torPath(t)}
	p, err := process.Start(context.Background(), process.Options{
		Creator: bineadapter.New(fake),
		Torrc:   offline(),
		TempDir: parent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() != 0 {
		t.Errorf("Pid = %d, want 0 for an embedded tor", p.Pid())
	}
	args := fake.gotArgs[0]
	if len(args) < 5 || args[0] != "-f" || args[2] != "--defaults-torrc" || args[4] != "--ignore-missing-torrc" {
		t.Errorf("args = %q", args)
	}
	if fake.ctxOfStart.Err() != nil {
		t.Error("the context given to bine is already done after Start")
	}
	if r := getinfo(t, p.Control(), "version"); !strings.HasPrefix(r, "0.4.") {
		t.Errorf("GETINFO version: %q", r)
	}
	pid := fake.lastPid()
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start))
	if leakcheck.PidAlive(pid) {
		t.Errorf("tor %d alive after Close", pid)
	}
	if fake.ctxOfStart.Err() == nil {
		t.Error("the context given to bine was not released after tor exited")
	}
	checkEmpty(t, parent)
}

func TestEmbeddedWithoutControlConn(t *testing.T) {
	parent := t.TempDir()
	fake := &fakeEmbedded{path: torPath(t), noConn: true}
	p, err := process.Start(context.Background(), process.Options{
		Creator: bineadapter.New(fake),
		Torrc:   offline(),
		TempDir: parent,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Start took ownership over the control socket with the cookie.
	if r := getinfo(t, p.Control(), "version"); !strings.HasPrefix(r, "0.4.") {
		t.Errorf("GETINFO version: %q", r)
	}
	pid := fake.lastPid()
	p.Control().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-p.Done():
	case <-ctx.Done():
	}
	if err := p.Err(); !errors.Is(err, process.ErrExited) {
		t.Fatalf("tor did not exit when the TAKEOWNERSHIP connection closed: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if leakcheck.PidAlive(pid) {
		t.Errorf("tor %d alive", pid)
	}
	checkEmpty(t, parent)
}

func TestCreatorError(t *testing.T) {
	parent := t.TempDir()
	boom := errors.New("boom")
	_, err := process.Start(context.Background(), process.Options{
		Creator: bineadapter.New(&fakeEmbedded{failNew: boom}),
		Torrc:   offline(),
		TempDir: parent,
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want boom", err)
	}
	checkEmpty(t, parent)
}
