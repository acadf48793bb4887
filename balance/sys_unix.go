//go:build unix && !linux

package balance

import (
	"os/exec"
	"syscall"
)

// Other Unix systems have no PR_SET_PDEATHSIG: an onionbalance whose
// program died without Close keeps running (it retries its lost control
// connection forever).

func setSysProcAttr(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func startCmd(c *exec.Cmd) error { return c.Start() }
