// Package bineadapter runs tor through a Creator of
// github.com/cretz/bine/process, such as the one of go-libtor (a tor linked
// into the program) or bine's own process.NewCreator.
//
//	p, err := process.Start(ctx, process.Options{
//		Creator: bineadapter.New(libtor.Creator),
//	})
//
// It lives in its own package so that package process does not import
// bine.
//
// A bine CmdCreatorFunc (what bine's process.NewCreator returns) yields an
// *exec.Cmd: the adapter runs it like process.ExecCreator does, with the
// owning control descriptor, tor's output captured and its own process
// group. Its context is never cancelled, so tor is stopped only by
// Process.Close.
//
// Any other Creator (an embedded tor) is asked for its
// EmbeddedControlConn, the owning connection of a tor running inside the
// program; closing it makes tor exit. When it has none
// (ErrControlConnUnsupported), Start authenticates on tor's control socket
// with the cookie and sends TAKEOWNERSHIP. Such a tor has no pid, no
// signals and writes its output where it likes.
package bineadapter

import (
	"context"
	"errors"
	"fmt"
	"net"

	bine "github.com/cretz/bine/process"

	"github.com/gotorcon/tor/process"
)

// New adapts a bine Creator to a process.Creator.
func New(c bine.Creator) process.Creator { return creator{c} }

type creator struct{ c bine.Creator }

func (a creator) Create(ctx context.Context, cmd *process.Cmd) (process.Runner, error) {
	if a.c == nil {
		return nil, errors.New("bineadapter: nil Creator")
	}
	// bine ties the process to the context it is given; ours must live
	// until Close.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if f, ok := a.c.(bine.CmdCreatorFunc); ok {
		ec, err := f(runCtx, cmd.Args...)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("bineadapter: %w", err)
		}
		if ec == nil {
			cancel()
			return nil, errors.New("bineadapter: CmdCreatorFunc returned a nil command")
		}
		r, err := process.NewExecRunner(ec, cmd.Output)
		if err != nil {
			cancel()
			return nil, err
		}
		return &execRunner{Runner: r, cancel: cancel}, nil
	}
	p, err := a.c.New(runCtx, cmd.Args...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bineadapter: %w", err)
	}
	if p == nil {
		cancel()
		return nil, errors.New("bineadapter: Creator returned a nil Process")
	}
	return &runner{p: p, cancel: cancel}, nil
}

// execRunner releases the context when tor has exited.
type execRunner struct {
	process.Runner
	cancel context.CancelFunc
}

func (r *execRunner) Wait() error {
	defer r.cancel()
	return r.Runner.Wait()
}

// runner is a bine Process: usually an embedded tor.
type runner struct {
	p      bine.Process
	cancel context.CancelFunc
}

func (r *runner) Control() (net.Conn, error) {
	conn, err := r.p.EmbeddedControlConn()
	if errors.Is(err, bine.ErrControlConnUnsupported) || (err == nil && conn == nil) {
		return nil, fmt.Errorf("%w (bine: %v)", process.ErrNoControl, err)
	}
	return conn, err
}

func (r *runner) Start() error { return r.p.Start() }

func (r *runner) Wait() error {
	defer r.cancel()
	return r.p.Wait()
}

// Pid is 0: a bine Process does not tell its pid.
func (r *runner) Pid() int { return 0 }

// Terminate is unsupported: a bine Process cannot be signalled. Closing the
// owning connection stops tor.
func (r *runner) Terminate() error {
	return fmt.Errorf("bineadapter: terminate: %w", errors.ErrUnsupported)
}

// Kill cancels the context given to the bine Creator (which stops a tor
// run with exec.CommandContext); an embedded tor cannot be killed.
func (r *runner) Kill() error {
	r.cancel()
	return nil
}
