//go:build unix

package balance

import (
	"os"
	"syscall"
)

const supported = true

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// kill sends SIGKILL to onionbalance's process group, then to onionbalance.
func kill(p *os.Process) error {
	gerr := syscall.Kill(-p.Pid, syscall.SIGKILL)
	if err := p.Kill(); err != nil && gerr != nil {
		return err
	}
	return nil
}
