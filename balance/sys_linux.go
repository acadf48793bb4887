package balance

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// On Linux onionbalance gets SIGKILL from the kernel when this program
// dies (PR_SET_PDEATHSIG), the way our tors exit when their owning control
// connection closes. The kernel sends it when the thread that forked the
// child ends, not the process, and Go ends a thread when a goroutine exits
// while locked to it; so every onionbalance is forked from one goroutine
// locked to a thread of its own, which lives as long as the program.

func setSysProcAttr(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

func startCmd(c *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the program
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: c, done: make(chan error, 1)}
	spawnCh <- r
	return <-r.done
}
