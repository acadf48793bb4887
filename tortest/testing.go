package tortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds the start-up of a network made by NewNetwork
// or Shared, including the wait for other start-ups holding the lock.
const startTimeout = 3 * time.Minute

// NewNetwork starts a private Tor network for one test (see Start) and
// stops it in t.Cleanup. If the start fails, NewNetwork prints every node's
// log and fails the test; if the test fails later, every node's log is
// printed before the network stops. opts may be omitted for the default
// network; at most one Options is allowed.
func NewNetwork(t testing.TB, opts ...Options) *Network {
	t.Helper()
	var o Options
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		t.Fatalf("tortest.NewNetwork: %d Options given, want at most 1", len(opts))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	n, err := start(ctx, o)
	if err != nil {
		if n != nil {
			logNetwork(t, n)
		}
		t.Fatalf("tortest: starting the network: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logNetwork(t, n)
		}
		if err := n.Close(); err != nil {
			t.Errorf("tortest: closing the network: %v", err)
		}
	})
	return n
}

// logNetwork prints every node's log to the test log.
func logNetwork(t testing.TB, n *Network) {
	t.Helper()
	var b strings.Builder
	_ = n.WriteLogs(&b)
	t.Logf("tortest: logs of the network in %s:\n%s", n.Dir(), b.String())
}

// shared is the network of Main, started by the first Shared call.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	opts    Options
	started bool
	n       *Network
	err     error
}

// Main runs the tests of a package that share one network (see Shared) and
// stops that network when they are done, then exits. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { tortest.Main(m, tortest.Options{}) }
//
// The network starts at the first Shared call, so a run of tests that do
// not need it (go test -run Unit) pays nothing.
func Main(m *testing.M, opts Options) {
	os.Exit(runMain(m, opts))
}

func runMain(m *testing.M, opts Options) int {
	shared.mu.Lock()
	shared.inMain, shared.opts = true, opts
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.n != nil {
		if err := shared.n.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "tortest: closing the shared network: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	shared.inMain, shared.started, shared.n, shared.err = false, false, nil, nil
	return code
}

// errNoMain is the failure of Shared outside Main.
var errNoMain = errors.New("tortest.Shared needs tortest.Main in TestMain (it stops the network when the tests are done)")

// Shared returns the network shared by every test of the package, starting
// it on first use with the Options given to Main. Tests must not close it.
// A failed start fails every test that asks for the network, with the same
// error. When a test that uses the network fails, the last lines of every
// node's log are printed.
func Shared(t testing.TB) *Network {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal(errNoMain)
	}
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		n, err := start(ctx, shared.opts)
		cancel()
		if err != nil {
			if n != nil {
				logNetwork(t, n)
			}
			shared.err = err
		} else {
			shared.n = n
		}
	}
	if shared.err != nil {
		t.Fatalf("tortest: starting the shared network: %v", shared.err)
	}
	n := shared.n
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for _, nd := range n.nodes {
				fmt.Fprintf(&b, "==== %s %s (pid %d) ====\n%s\n", nd.Role, nd.Nickname, nd.Pid, nd.log.Tail(40))
			}
			t.Logf("tortest: last log lines of the shared network:\n%s", b.String())
		}
	})
	return n
}
