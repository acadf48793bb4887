package leakcheck

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func parked(started, stop chan struct{}) {
	close(started)
	<-stop
}

func TestGoroutines(t *testing.T) {
	started, stop := make(chan struct{}), make(chan struct{})
	go parked(started, stop)
	<-started
	match := Running("leakcheck.parked")
	var ft fakeT
	Check(&ft, 50*time.Millisecond, match)
	if !ft.failed {
		t.Fatal("a running goroutine was not reported")
	}
	if len(Goroutines(CreatedBy("github.com/gotorcon/tor/internal/leakcheck."))) == 0 {
		t.Error("CreatedBy did not match the test's goroutine")
	}
	close(stop)
	Check(t, 5*time.Second, match)
}

func TestPidAlive(t *testing.T) {
	if !PidAlive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	if PidAlive(0) || PidAlive(-1) {
		t.Error("pid <= 0 alive")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	cmd.Wait()
	if PidAlive(pid) {
		t.Errorf("pid %d alive after Wait", pid)
	}
	WaitPidGone(t, pid, time.Second)
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
