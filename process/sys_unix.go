//go:build unix

package process

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
)

const haveUnixSockets = true

func setProcessGroup(c *exec.Cmd) {
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Setpgid = true
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// killGroup sends SIGKILL to tor's process group (so that nothing it
// started survives and keeps its output pipe open), then to tor itself.
func killGroup(p *os.Process) error {
	gerr := syscall.Kill(-p.Pid, syscall.SIGKILL)
	err := p.Kill()
	if err != nil && gerr == nil {
		return nil
	}
	return err
}

// socketPair returns a connected pair of unix stream sockets: ours as a
// net.Conn, theirs as a file for a child. Both are close-on-exec (an
// exec.Cmd's ExtraFiles are passed regardless).
func socketPair() (net.Conn, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	f0 := os.NewFile(uintptr(fds[0]), "tor-owning-control")
	f1 := os.NewFile(uintptr(fds[1]), "tor-owning-control-child")
	conn, err := net.FileConn(f0)
	f0.Close()
	if err != nil {
		f1.Close()
		return nil, nil, err
	}
	return conn, f1, nil
}
