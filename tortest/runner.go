package tortest

import (
	"context"
	"io"
	"os/exec"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/process"
)

// torProcess is what tortest needs of a running node.
type torProcess interface {
	Close() error
	Done() <-chan struct{}
	Err() error
	Pid() int
}

// startTor starts one node through the process package. The node's
// DataDirectory is dataDir, which the Network removes. tor's output goes to
// out only (it is kept per node and shown on failure, see
// Network.WriteLogs), not to a Logger.
func startTor(ctx context.Context, tor string, torrc *config.Torrc, dataDir string, out io.Writer) (torProcess, error) {
	n := &node{}
	p, err := process.Start(ctx, process.Options{
		Torrc:   torrc,
		DataDir: dataDir,
		Output:  out,
		Creator: &keepRunner{n: n, Creator: process.ExecCreator(func(_ context.Context, args []string) (*exec.Cmd, error) {
			return exec.Command(tor, args...), nil
		})},
	})
	if err != nil {
		return nil, err
	}
	n.Process = p
	return n, nil
}

// node is a Process whose Close kills tor at once instead of asking it to
// exit: its state is thrown away with its directory, and tor 0.4.9.11
// authorities often deadlock on a clean exit shortly after a consensus
// (the main thread in cpuworker_free_all waits for a worker's mutex), which
// would cost each Close 1.5 s of waiting for the escalation to SIGKILL.
type node struct {
	*process.Process
	runner process.Runner
}

// Close implements torProcess.
func (n *node) Close() error {
	select {
	case <-n.Done():
	default:
		if n.runner != nil {
			_ = n.runner.Kill() // errors.ErrUnsupported: Close escalates itself
		}
	}
	return n.Process.Close()
}

// keepRunner is a Creator that remembers the Runner it made, so that
// node.Close can kill tor.
type keepRunner struct {
	process.Creator
	n *node
}

// Create implements process.Creator.
func (k *keepRunner) Create(ctx context.Context, cmd *process.Cmd) (process.Runner, error) {
	r, err := k.Creator.Create(ctx, cmd)
	k.n.runner = r
	return r, err
}
