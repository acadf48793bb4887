//go:build unix

package launch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

func TestGlobalSharedByTwentyGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		handles []*Tor
		errs    []error
		starts  int
	)
	counting := creatorFunc(nil)
	inner := recordingCreator(func(int, string) {
		mu.Lock()
		starts++
		mu.Unlock()
	})
	counting = creatorFunc(inner.Create)
	opts := Options{Torrc: offline(), Creator: counting}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := Global(ctx, opts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			handles = append(handles, h)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
	}
	if starts != 1 {
		t.Fatalf("%d tors started, want 1", starts)
	}
	pid := handles[0].Process().Pid()
	dir := privDir(handles[0])
	for _, h := range handles {
		if h.Process().Pid() != pid {
			t.Fatalf("handle on pid %d, want %d", h.Process().Pid(), pid)
		}
	}

	// Conflicting options are refused while it runs.
	_, err := Global(ctx, Options{Torrc: offline().Add("SocksPort", "0"), Creator: counting})
	if !errors.Is(err, ErrGlobalConflict) {
		t.Errorf("conflicting Global = %v, want ErrGlobalConflict", err)
	}
	t.Log(err)

	// All but one close: tor keeps running and answers.
	for _, h := range handles[1:] {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		h.Close() // idempotent: must not drop another reference
	}
	if _, err := handles[0].Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatalf("shared tor after 19 Closes: %v", err)
	}
	if err := handles[0].Close(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, pid, dir)
	checkNoGoroutines(t)

	// The next call starts a new one.
	h, err := Global(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Process().Pid() == pid || starts != 2 {
		t.Errorf("no new tor after the last Close (pid %d, starts %d)", h.Process().Pid(), starts)
	}
}

// A later Global call that wants the network enables it on a global tor
// started offline, with the same bootstrap wait.
func TestGlobalEnablesNetworkForLaterCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	torrc := deadEndNetwork(t)
	first, err := Global(ctx, Options{Torrc: torrc, NoNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var tags []string
	_, err = Global(ctx, Options{
		Torrc:            torrc,
		BootstrapTimeout: 1500 * time.Millisecond,
		Progress:         func(b *control.Bootstrap) { tags = append(tags, b.Tag) },
	})
	var be *BootstrapError
	if !errors.As(err, &be) || be.Last == nil || be.Last.Progress != 5 {
		t.Fatalf("second Global = %v, want a BootstrapError at 5%%", err)
	}
	if len(tags) == 0 || tags[len(tags)-1] != "conn" {
		t.Errorf("progress tags %v", tags)
	}
	// The failed caller dropped its reference; the first one still works.
	if _, err := first.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	global.mu.Lock()
	refs := global.cur.refs
	global.mu.Unlock()
	if refs != 1 {
		t.Errorf("refs = %d, want 1", refs)
	}
}

func TestGlobalRestartsAfterExit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h1, err := Global(ctx, Options{Torrc: offline()})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	h1.Process().Control().Close() // tor exits
	<-h1.Process().Done()
	h2, err := Global(ctx, Options{Torrc: offline()})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.Process() == h1.Process() {
		t.Fatal("Global returned the dead tor")
	}
	if _, err := h2.Control().GetInfoValue(ctx, "version"); err != nil {
		t.Fatal(err)
	}
}

func TestGlobalStartFailureReachesWaiters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Global(ctx, Options{Path: "/nonexistent/tor", Torrc: new(config.Torrc)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("Global with a missing binary succeeded")
		}
	}
	global.mu.Lock()
	defer global.mu.Unlock()
	if global.cur != nil {
		t.Error("a failed start is still the global tor")
	}
}
