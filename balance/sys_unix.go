//go:build unix && !linux

package balance

import (
	"os/exec"
	"syscall"
)

// Without PR_SET_PDEATHSIG, onionbalance outlives this program only until
// its tor goes away... which it does not notice (it retries forever):
// stop it with Close.

func setSysProcAttr(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func startCmd(c *exec.Cmd) error { return c.Start() }
