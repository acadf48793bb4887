package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Cmd is one run of tor, as Start asks a [Creator] for it.
type Cmd struct {
	// Args are tor's arguments, without the program name.
	Args []string
	// Output receives tor's standard output and standard error. It is safe
	// for concurrent use.
	Output io.Writer
}

// A Creator makes the [Runner] that runs tor. The default (Options.Creator
// nil) runs the tor binary found by [Find]; a Creator can run tor another
// way, for example a tor linked into the program.
type Creator interface {
	// Create prepares tor to run with cmd. ctx bounds only the preparation:
	// the Runner must not stop tor when ctx ends.
	Create(ctx context.Context, cmd *Cmd) (Runner, error)
}

// ErrNoControl is returned by [Runner.Control] when the runner has no
// owning control connection to give. Start then connects to tor's control
// port with the authentication cookie and sends TAKEOWNERSHIP.
var ErrNoControl = errors.New("process: runner has no owning control connection")

// A Runner is one tor, prepared by a [Creator].
type Runner interface {
	// Control returns tor's owning, pre-authenticated control connection
	// (tor exits when it closes), or an error matching ErrNoControl when
	// this runner cannot make one. Start calls it once, before Start.
	Control() (net.Conn, error)
	// Start starts tor and returns without waiting for it.
	Start() error
	// Wait waits for tor to exit and reports how it exited.
	Wait() error
	// Pid is tor's process id, or 0 when tor does not run as a process of
	// its own.
	Pid() int
	// Terminate asks tor to exit cleanly (SIGTERM). It returns an error
	// matching errors.ErrUnsupported when it cannot.
	Terminate() error
	// Kill stops tor at once (SIGKILL, to its process group where it has
	// one). It returns an error matching errors.ErrUnsupported when it
	// cannot.
	Kill() error
}

// ExecCreator is a [Creator] that runs tor as a child process built by the
// function: it gets tor's arguments and returns the command to run (for
// example exec.Command(path, args...)). The function may set the
// environment, working directory or extra files; the Creator sets Stdout
// and Stderr, passes the owning control connection as an inherited
// descriptor with __OwningControllerFD (where the platform has socket
// pairs), and puts tor in a process group of its own.
type ExecCreator func(ctx context.Context, args []string) (*exec.Cmd, error)

// Create implements [Creator].
func (f ExecCreator) Create(ctx context.Context, cmd *Cmd) (Runner, error) {
	c, err := f(ctx, append([]string(nil), cmd.Args...))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("process: ExecCreator returned a nil *exec.Cmd")
	}
	return NewExecRunner(c, cmd.Output)
}

// NewExecRunner returns a [Runner] for c, which must not have been started.
// It sets c's Stdout and Stderr to output (which may be nil), puts tor in a
// process group of its own, and, where the platform has unix socket pairs,
// appends "__OwningControllerFD N" to c.Args with the descriptor passed in
// c.ExtraFiles.
func NewExecRunner(c *exec.Cmd, output io.Writer) (Runner, error) {
	if c.Process != nil {
		return nil, errors.New("process: NewExecRunner: command already started")
	}
	if output == nil {
		output = io.Discard
	}
	c.Stdout = output
	c.Stderr = output
	if c.WaitDelay == 0 {
		c.WaitDelay = 2 * time.Second
	}
	setProcessGroup(c)
	r := &execRunner{cmd: c}
	ours, theirs, err := socketPair()
	switch {
	case errors.Is(err, errors.ErrUnsupported):
	case err != nil:
		return nil, fmt.Errorf("process: owning control socket pair: %w", err)
	default:
		r.ctl, r.childEnd = ours, theirs
		fd := 3 + len(c.ExtraFiles)
		c.ExtraFiles = append(c.ExtraFiles, theirs)
		c.Args = append(c.Args, "__OwningControllerFD", strconv.Itoa(fd))
	}
	return r, nil
}

type execRunner struct {
	cmd      *exec.Cmd
	ctl      net.Conn
	childEnd *os.File

	mu       sync.Mutex
	ctlTaken bool
	waited   bool
}

func (r *execRunner) Control() (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctl == nil {
		return nil, ErrNoControl
	}
	if r.ctlTaken {
		return nil, errors.New("process: Runner.Control called twice")
	}
	r.ctlTaken = true
	return r.ctl, nil
}

func (r *execRunner) Start() error {
	err := r.cmd.Start()
	// Our copy of tor's end must be closed, or tor's exit would not be the
	// only way the pair closes (and tor would not see ours closing).
	if r.childEnd != nil {
		r.childEnd.Close()
		r.childEnd = nil
	}
	if err != nil {
		r.mu.Lock()
		if r.ctl != nil && !r.ctlTaken {
			r.ctl.Close()
		}
		r.mu.Unlock()
	}
	return err
}

func (r *execRunner) Wait() error { return r.cmd.Wait() }

func (r *execRunner) Pid() int {
	if r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *execRunner) Terminate() error {
	if r.cmd.Process == nil {
		return errors.New("process: not started")
	}
	return terminate(r.cmd.Process)
}

func (r *execRunner) Kill() error {
	if r.cmd.Process == nil {
		return errors.New("process: not started")
	}
	return killGroup(r.cmd.Process)
}
