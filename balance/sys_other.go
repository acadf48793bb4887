//go:build !unix

package balance

import (
	"os"
	"os/exec"
)

// onionbalance runs on Unix only (it reads its key and configuration from
// /dev/fd).
const supported = false

func setSysProcAttr(c *exec.Cmd)    {}
func startCmd(c *exec.Cmd) error    { return c.Start() }
func terminate(p *os.Process) error { return p.Kill() }
func kill(p *os.Process) error      { return p.Kill() }
