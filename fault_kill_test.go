//go:build unix

package tor_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/process"
	"github.com/gotorcon/tor/tortest"
)

// hangBound bounds every wait of the kill tests. It exists to turn a hang
// into a failure, not to judge speed: the times are logged.
const hangBound = 10 * time.Second

// TestKillOnPrivateNetwork SIGKILLs a façade tor on a tortest network
// while Start bootstraps it, while EnableNetwork does, and while a Dial and
// an HTTP request go through it. Every call returns promptly with an error
// matching process.ErrExited (not a hang, not a bare EOF), Close returns
// promptly, later calls fail at once, and nothing is left behind.
func TestKillOnPrivateNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network (~10 s)")
	}
	n := tortest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("MidBootstrapStart", func(t *testing.T) {
		base := ourGoroutines()
		rc := &recordingCreator{}
		k := &midBootstrapKiller{pid: rc.pid}
		start := time.Now()
		tr, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc(), Creator: rc, Progress: k.progress})
		returned := time.Now()
		if err == nil {
			tr.Close()
			t.Fatalf("Start succeeded; progress seen: %s", k.steps())
		}
		killedAt, pid := k.killed()
		require.NotZero(t, pid, "tor was killed mid-bootstrap (steps: %s)", k.steps())
		t.Logf("Start returned %v after SIGKILL (at %s; %v after Start began): %v",
			returned.Sub(killedAt), k.steps(), returned.Sub(start).Round(time.Millisecond), err)
		assert.ErrorIs(t, err, process.ErrExited)
		var be *launch.BootstrapError
		assert.True(t, errors.As(err, &be), "%v is a *launch.BootstrapError", err)
		assert.Contains(t, err.Error(), "killed")
		assert.Less(t, returned.Sub(killedAt), hangBound)
		checkNothingLeft(t, pid, base)
		_, err = os.Stat(rc.dir)
		assert.ErrorIs(t, err, os.ErrNotExist, "tor's temporary directory %s is removed", rc.dir)
	})

	t.Run("MidBootstrapEnableNetwork", func(t *testing.T) {
		base := ourGoroutines()
		k := &midBootstrapKiller{}
		tr, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc(), NoNetwork: true, Progress: k.progress})
		require.NoError(t, err)
		defer tr.Close()
		pid := tr.Launched().Process().Pid()
		_, err = tr.Config(ctx) // loaded and kept in sync while tor lives
		require.NoError(t, err)
		k.arm(pid)
		err = tr.EnableNetwork(ctx)
		returned := time.Now()
		killedAt, killed := k.killed()
		require.NotZero(t, killed, "tor was killed mid-bootstrap (steps: %s); EnableNetwork: %v", k.steps(), err)
		require.Error(t, err)
		t.Logf("EnableNetwork returned %v after SIGKILL (at %s): %v", returned.Sub(killedAt), k.steps(), err)
		assert.ErrorIs(t, err, process.ErrExited)
		var be *launch.BootstrapError
		assert.True(t, errors.As(err, &be), "%v is a *launch.BootstrapError", err)
		assert.Less(t, returned.Sub(killedAt), hangBound)

		later := time.Now()
		err = tr.EnableNetwork(ctx)
		t.Logf("EnableNetwork again: %v later: %v", time.Since(later), err)
		assert.ErrorIs(t, err, process.ErrExited)
		_, err = tr.Config(ctx)
		assert.ErrorIs(t, err, process.ErrExited, "Config returns tor's exit, not the configuration it can no longer sync")
		closeStart := time.Now()
		require.NoError(t, tr.Close())
		t.Logf("Close took %v", time.Since(closeStart))
		checkNothingLeft(t, pid, base)
	})

	t.Run("DialInFlight", func(t *testing.T) {
		base := ourGoroutines()
		// The service runs on a tor of its own: the one killed is only the
		// client.
		svc, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc()})
		require.NoError(t, err)
		defer svc.Close()
		// Two services: one for the HTTP request, one for the dial, so
		// that the dial cannot reuse the request's circuit and has
		// introduction and rendezvous in flight when tor dies.
		var ln, dialLn *onion.Listener
		var dialErr error
		published := make(chan struct{})
		go func() {
			defer close(published)
			dialLn, dialErr = svc.Listen(ctx, 80)
		}()
		ln, err = svc.Listen(ctx, 80)
		<-published
		require.NoError(t, err)
		defer ln.Close()
		require.NoError(t, dialErr)
		defer dialLn.Close()
		inHandler := make(chan struct{}, 1)
		release := make(chan struct{})
		defer close(release)
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hangup" { // the stream ends without an answer
				if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
					c.Close()
				}
				return
			}
			if r.URL.Path == "/hang" {
				inHandler <- struct{}{}
				select { // never answers while tor lives
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			fmt.Fprint(w, "hello")
		}))

		// A client tor with an HTTP request waiting for its answer and a
		// dial to the other service in flight when it is killed. The dial
		// may win the race against the kill (it has descriptor fetch,
		// introduction and rendezvous to do after tor reports the
		// stream): then try again with a new client tor, at most 3 times.
		var (
			tr       *tor.Tor
			pid      int
			killedAt time.Time
			dialAt   time.Time
			httpErr  error
			httpAt   time.Time
		)
		for attempt := 1; ; attempt++ {
			tr, err = tor.Start(ctx, &tor.Options{Network: n.ClientTorrc()})
			require.NoError(t, err)
			pid = tr.Launched().Process().Pid()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/", nil)
			resp, err := tr.HTTPClient().Do(req)
			require.NoError(t, err)
			resp.Body.Close()

			// A stream that breaks while tor runs is not blamed on tor:
			// its error is the stream's own, returned without waiting.
			req, _ = http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/hangup", nil)
			s := time.Now()
			_, err = tr.HTTPClient().Do(req)
			t.Logf("a stream broken by the service, tor alive: %v: %v", time.Since(s), err)
			require.Error(t, err)
			assert.NotErrorIs(t, err, process.ErrExited)

			httpDone := make(chan struct{})
			go func() {
				defer close(httpDone)
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/hang", nil)
				resp, err := tr.HTTPClient().Do(req)
				httpAt = time.Now()
				if err == nil {
					resp.Body.Close()
				}
				httpErr = err
			}()
			select {
			case <-inHandler:
			case <-time.After(hangBound):
				t.Fatal("the HTTP request did not reach the service")
			}

			sub, err := tr.Control().Subscribe(ctx, "STREAM")
			require.NoError(t, err)
			dialDone := make(chan struct{})
			go func() {
				defer close(dialDone)
				c, err := tr.Dial(ctx, "tcp", dialLn.Addr().String())
				dialAt = time.Now()
				if err == nil {
					c.Close()
				}
				dialErr = err
			}()
			waitStreamNew(t, sub, dialLn.Hostname())
			killedAt = time.Now()
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			sub.Close()
			for _, ch := range []chan struct{}{dialDone, httpDone} {
				select {
				case <-ch:
				case <-time.After(hangBound):
					t.Fatal("a call in flight did not return after tor was killed")
				}
			}
			if dialErr != nil || attempt == 3 {
				break
			}
			t.Logf("attempt %d: the dial succeeded before tor died (%v before the kill); again with a new tor", attempt, killedAt.Sub(dialAt))
			tr.Close()
		}
		t.Logf("in-flight Dial returned %v after SIGKILL: %v", dialAt.Sub(killedAt), dialErr)
		t.Logf("in-flight HTTP request returned %v after SIGKILL: %v", httpAt.Sub(killedAt), httpErr)
		require.Error(t, dialErr, "the dial was still in flight when tor was killed")
		assert.ErrorIs(t, dialErr, process.ErrExited)
		require.Error(t, httpErr)
		assert.ErrorIs(t, httpErr, process.ErrExited)

		// Later calls fail at once with tor's exit.
		calls := []struct {
			name string
			call func() error
		}{
			{"Dial", func() error { _, err := tr.Dial(ctx, "tcp", ln.Addr().String()); return err }},
			{"Dialer", func() error { _, err := tr.Dialer(ctx); return err }},
			{"Resolve", func() error { _, err := tr.Resolve(ctx, "example.com"); return err }},
			{"HTTP", func() error {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/", nil)
				resp, err := tr.HTTPClient().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			}},
			{"Config", func() error { _, err := tr.Config(ctx); return err }},
			{"Listen", func() error { _, err := tr.Listen(ctx, 80); return err }},
			{"EnableNetwork", func() error { return tr.EnableNetwork(ctx) }},
		}
		var took []string
		for _, c := range calls {
			s := time.Now()
			err := c.call()
			took = append(took, fmt.Sprintf("%s %v", c.name, time.Since(s)))
			assert.ErrorIs(t, err, process.ErrExited, "%s after tor died: %v", c.name, err)
		}
		t.Logf("later calls: %s", strings.Join(took, ", "))

		closeStart := time.Now()
		require.NoError(t, tr.Close())
		t.Logf("Close took %v", time.Since(closeStart))
		_, err = tr.Config(ctx)
		assert.ErrorIs(t, err, net.ErrClosed, "after Close, calls say it was closed")
		require.NoError(t, ln.Close())
		require.NoError(t, dialLn.Close())
		require.NoError(t, svc.Close())
		checkNothingLeft(t, pid, base)
	})
}

// waitStreamNew waits for tor's STREAM NEW event for a stream to host.
func waitStreamNew(t *testing.T, sub *control.Subscription, host string) {
	t.Helper()
	timeout := time.After(hangBound)
	for {
		select {
		case ev, ok := <-sub.Events():
			require.True(t, ok, "the STREAM subscription ended")
			v, err := ev.Parsed()
			if se, ok := v.(*control.StreamEvent); err == nil && ok && se.Status == "NEW" && se.TargetHost == host {
				return
			}
		case <-timeout:
			t.Fatal("no STREAM NEW event for the dial")
		}
	}
}

// recordingCreator runs tor as the default Creator does, and records the
// Runner so that a test can learn tor's pid before Start returns.
type recordingCreator struct {
	mu     sync.Mutex
	runner process.Runner
	dir    string // process's temporary directory (its torrc's)
}

func (c *recordingCreator) Create(ctx context.Context, cmd *process.Cmd) (process.Runner, error) {
	path, err := process.Find("")
	if err != nil {
		return nil, err
	}
	r, err := process.NewExecRunner(exec.Command(path, cmd.Args...), cmd.Output)
	c.mu.Lock()
	c.runner = r
	for i, a := range cmd.Args[:len(cmd.Args)-1] {
		if a == "-f" {
			c.dir = filepath.Dir(cmd.Args[i+1])
		}
	}
	c.mu.Unlock()
	return r, err
}

func (c *recordingCreator) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runner == nil {
		return 0
	}
	return c.runner.Pid()
}

// midBootstrapKiller is a Progress callback that SIGKILLs tor at the first
// bootstrap step past 0 % and short of 100 %.
type midBootstrapKiller struct {
	pid func() int // nil until armed

	mu        sync.Mutex
	seen      []string
	killedAt  time.Time
	killedPid int
}

func (k *midBootstrapKiller) arm(pid int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pid = func() int { return pid }
}

func (k *midBootstrapKiller) progress(b *control.Bootstrap) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seen = append(k.seen, fmt.Sprintf("%d%%", b.Progress))
	if k.killedPid != 0 || k.pid == nil || b.Progress <= 0 || b.Progress >= 100 {
		return
	}
	if pid := k.pid(); pid > 0 {
		k.killedAt = time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			k.killedPid = pid
		}
	}
}

func (k *midBootstrapKiller) steps() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.seen, " ")
}

// killed returns when and which pid was killed (0: none).
func (k *midBootstrapKiller) killed() (time.Time, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killedAt, k.killedPid
}

// ourPrefixes are the packages whose goroutines must not outlive a Close.
var ourPrefixes = []string{
	"github.com/gotorcon/tor.", "github.com/gotorcon/tor/launch.", "github.com/gotorcon/tor/process.",
	"github.com/gotorcon/tor/control.", "github.com/gotorcon/tor/config.", "github.com/gotorcon/tor/onion.",
	"net/http.(*Transport)",
}

// ourGoroutines counts the goroutines of ours that run now (the tortest
// network's own among them).
func ourGoroutines() int { return len(leakcheck.Goroutines(leakcheck.CreatedBy(ourPrefixes...))) }

// checkNothingLeft fails if tor pid still runs or if more goroutines of
// ours run than base (polling, so that ending ones may end).
func checkNothingLeft(t *testing.T, pid int, base int) {
	t.Helper()
	leakcheck.WaitPidGone(t, pid, hangBound)
	deadline := time.Now().Add(5 * time.Second)
	for {
		gs := leakcheck.Goroutines(leakcheck.CreatedBy(ourPrefixes...))
		if len(gs) <= base {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines of ours run, %d before:\n%s", len(gs), base, strings.Join(gs, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}
