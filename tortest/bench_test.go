package tortest_test

import (
	"context"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/tortest"
)

// BenchmarkStart measures a network's start-up (keys, launch, first
// complete consensus) and its Close. About 8 s + 0.1 s per op on 2 cores.
func BenchmarkStart(b *testing.B) {
	var ready, closing time.Duration
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		t0 := time.Now()
		n, err := tortest.Start(ctx, tortest.Options{})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
		ready += t1.Sub(t0)
		closing += time.Since(t1)
	}
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-ready/op")
	b.ReportMetric(float64(closing.Milliseconds())/float64(b.N), "ms-close/op")
}

// BenchmarkJoin measures a new tor joining the shared network through
// launch.Private, from start to Bootstrapped 100 %, and its Close.
func BenchmarkJoin(b *testing.B) {
	n := tortest.Shared(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tor, err := launch.Private(ctx, launch.Options{Network: n.ClientTorrc()})
		if err != nil {
			b.Fatal(err)
		}
		phase, err := tor.Control().GetInfoValue(ctx, "status/bootstrap-phase")
		if err != nil {
			b.Fatal(err)
		}
		if bs, err := control.ParseBootstrap(phase); err != nil || !bs.Done() {
			b.Fatalf("not bootstrapped: %q %v", phase, err)
		}
		if err := tor.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
