//go:build unix

package tor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/tortest"
)

// TestOnPrivateNetwork runs the façade on a tortest network: an
// HTTPClient made before EnableNetwork, a restart with kept state against
// a fresh start, and finally a Start against the network once it is dead.
func TestOnPrivateNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network (~10 s)")
	}
	n := tortest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("HTTPClientBeforeEnableNetwork", func(t *testing.T) {
		tr, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc(), NoNetwork: true})
		require.NoError(t, err)
		defer tr.Close()
		hc := tr.HTTPClient() // made while tor has no SOCKS port
		_, err = hc.Get("http://example.onion/")
		require.ErrorIs(t, err, launch.ErrNoSocks, "before EnableNetwork")

		require.NoError(t, tr.EnableNetwork(ctx))
		ln, err := tr.Listen(ctx, 80)
		require.NoError(t, err)
		defer ln.Close()
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }))
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String(), nil)
		resp, err := hc.Do(req)
		require.NoError(t, err, "the same client after EnableNetwork")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "hello", string(body))
	})

	t.Run("KeptStateVsFresh", func(t *testing.T) {
		// start bootstraps a tor on dir (a new one for a fresh start) and
		// returns its time to 100 %, its steps, its entry guards and the
		// guards tor sampled (the Guard lines of its state file, with
		// their randomized sampled_on dates).
		start := func(dir string) (took time.Duration, steps, guards string, sampled []string) {
			t0 := time.Now()
			var b strings.Builder
			tr, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc(), DataDir: dir,
				Progress: func(p *control.Bootstrap) {
					fmt.Fprintf(&b, "%d%%@%v ", p.Progress, time.Since(t0).Round(time.Millisecond))
				}})
			require.NoError(t, err)
			took = time.Since(t0)
			guards, err = tr.Control().GetInfoValue(ctx, "entry-guards")
			require.NoError(t, err)
			require.NoError(t, tr.Close())
			return took, b.String(), strings.TrimSpace(guards), sampledGuards(t, dir)
		}
		kept := filepath.Join(t.TempDir(), "kept")
		var keptTimes, freshTimes []time.Duration
		_, steps, guards0, sampled0 := start(kept)
		t.Logf("first run: %s; guards %q", steps, guards0)
		require.NotEmpty(t, sampled0, "tor sampled guards")
		for i := range 3 {
			took, steps, guards, sampled := start(kept)
			keptTimes = append(keptTimes, took)
			t.Logf("restart %d with kept state: %v: %s", i, took.Round(time.Millisecond), steps)
			assert.Equal(t, guardIDs(guards0), guardIDs(guards), "a restart with kept state keeps its guards")
			assert.Equal(t, sampled0, sampled, "a restart with kept state keeps the guards it sampled, with their dates")
			took, steps, _, fresh := start(filepath.Join(t.TempDir(), "fresh"))
			freshTimes = append(freshTimes, took)
			t.Logf("fresh start %d: %v: %s", i, took.Round(time.Millisecond), steps)
			assert.NotEqual(t, sampled0, fresh, "a fresh tor samples its guards anew")
		}
		t.Logf("time to bootstrapped, kept state %v, fresh %v (medians %v vs %v)", keptTimes, freshTimes, median(keptTimes), median(freshTimes))
	})

	t.Run("DeadNetwork", func(t *testing.T) {
		torrc := n.ClientTorrc()
		require.NoError(t, n.Close())
		const stall = 15 * time.Second
		var mu sync.Mutex
		var warnings []string
		t0 := time.Now()
		_, err := tor.Start(ctx, &tor.Options{Network: torrc, StallTimeout: stall, Warning: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, s)
		}})
		took := time.Since(t0)
		t.Logf("after %v: %v", took.Round(time.Millisecond), err)
		var be *launch.BootstrapError
		require.True(t, errors.As(err, &be), "%v is a *BootstrapError", err)
		assert.ErrorIs(t, err, launch.ErrBootstrapStalled)
		assert.Less(t, took, stall+10*time.Second, "ended by the stall detector")
		// Tor's bootstrap problem (its STATUS_CLIENT warning: the relay
		// refuses connections) and its last [warn] lines are in the error.
		require.NotNil(t, be.Problem, "tor's bootstrap warning is in the error")
		assert.Contains(t, err.Error(), "last problem: Connection refused")
		require.NotEmpty(t, be.Lines)
		assert.Contains(t, strings.Join(be.Lines, "\n"), "[warn]")
		mu.Lock()
		defer mu.Unlock()
		t.Logf("Warning got %d: %q", len(warnings), warnings)
		assert.NotEmpty(t, warnings, "Options.Warning got tor's warnings")
	})
}

// sampledGuards returns the Guard lines of tor's state file in dir, without
// the fields that change on every run.
func sampledGuards(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "state"))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "Guard ") {
			continue
		}
		var keep []string
		for _, f := range strings.Fields(l)[1:] {
			if strings.HasPrefix(f, "rsa_id=") || strings.HasPrefix(f, "sampled_on=") || strings.HasPrefix(f, "sampled_idx=") {
				keep = append(keep, f)
			}
		}
		out = append(out, strings.Join(keep, " "))
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

// guardIDs returns the fingerprints of GETINFO entry-guards, one per line
// ("$FP~nick status ...").
func guardIDs(v string) []string {
	var ids []string
	for _, l := range strings.Split(v, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			ids = append(ids, strings.SplitN(f[0], "~", 2)[0])
		}
	}
	return ids
}
