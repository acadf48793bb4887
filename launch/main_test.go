//go:build unix

package launch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/internal/leakcheck"
)

const childEnv = "GOTORCON_LAUNCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

// runChild is the Go program of TestOwnershipSIGKILL: it launches a tor
// with launch.Private, says where it is, and waits to be killed.
func runChild() {
	tor, err := Private(context.Background(), Options{Torrc: offline()})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("PID %d DIR %s\n", tor.Process().Pid(), filepath.Dir(tor.Process().TorrcPath()))
	select {}
}

// A Go program that launched tor is killed with SIGKILL: tor exits within
// seconds (the kernel closes the owning control socket).
func TestOwnershipSIGKILL(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
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
	t.Cleanup(func() {
		if leakcheck.PidAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(dir) // the next Start would sweep it; do not leave it to chance
	})
	if !leakcheck.PidAlive(pid) {
		t.Fatalf("tor %d not running", pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	took := leakcheck.WaitPidGone(t, pid, 5*time.Second)
	t.Logf("tor exited %v after its program was SIGKILLed", took)
}
