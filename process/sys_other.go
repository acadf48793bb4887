//go:build !unix

package process

import (
	"errors"
	"net"
	"os"
	"os/exec"
)

const haveUnixSockets = false

func setProcessGroup(c *exec.Cmd) {}

// terminate is unsupported: Windows has no SIGTERM for console programs.
func terminate(p *os.Process) error { return errors.ErrUnsupported }

func killGroup(p *os.Process) error { return p.Kill() }

func socketPair() (net.Conn, *os.File, error) { return nil, nil, errors.ErrUnsupported }
