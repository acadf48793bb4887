package tortest

import (
	"context"
	"io"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/process"
)

// nodeGracePeriod is how long Close lets a node exit after SIGTERM before
// killing it. A node's state is thrown away with its directory, so there is
// nothing to wait for; and tor 0.4.9.11 authorities sometimes deadlock on
// exit (main thread in cpuworker_free_all waiting for a worker mutex).
const nodeGracePeriod = 500 * time.Millisecond

// torProcess is the part of *process.Process that tortest uses.
type torProcess interface {
	Close() error
	Done() <-chan struct{}
	Err() error
	Pid() int
}

// startTor starts one node through the process package. The node's
// DataDirectory is dataDir, which the Network removes.
// The tor log lines go to out only (not to a Logger: they are kept per node
// and shown on failure, see Network.WriteLogs).
func startTor(ctx context.Context, tor string, torrc *config.Torrc, dataDir string, out io.Writer) (torProcess, error) {
	return process.Start(ctx, process.Options{
		Path:        tor,
		Torrc:       torrc,
		DataDir:     dataDir,
		Output:      out,
		GracePeriod: nodeGracePeriod,
	})
}
