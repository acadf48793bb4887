//go:build unix

package launch

import (
	"context"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/tortest"
)

// Bootstrap to 100 % on a private loopback network, with the network first
// off and enabled later, then the same through Private directly.
func TestBootstrapOnPrivateNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network (~10 s)")
	}
	net := tortest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var steps []int
	start := time.Now()
	tor, err := Private(ctx, Options{
		Network:   net.ClientTorrc(),
		NoNetwork: true,
		Progress:  func(b *control.Bootstrap) { steps = append(steps, b.Progress) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	offline := time.Since(start)
	if err := tor.EnableNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("launch offline %v, then bootstrap %v; steps %v", offline, time.Since(start)-offline, steps)
	if len(steps) < 2 || steps[0] != 0 || steps[len(steps)-1] != 100 {
		t.Errorf("progress %v, want 0 … 100", steps)
	}
	addr, err := tor.SocksAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SOCKS at %s", addr)
	// Enabling again is harmless: the phase is already 100.
	if err := tor.EnableNetwork(ctx); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	tor2, err := Private(ctx, Options{Network: net.ClientTorrc()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Private to 100%% in %v", time.Since(start))
	tor2.Close()
}
