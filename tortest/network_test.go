package tortest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

func TestStartAndClose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Tor network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := start(ctx, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		if n != nil {
			logNetwork(t, n)
		}
		t.Fatal(err)
	}
	took, attempts := n.StartupTime()
	t.Logf("network ready in %v (%d attempts); consensus valid after %v", took, attempts, n.consensus.ValidAfter)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(n.Dir()); !os.IsNotExist(err) {
		t.Fatalf("dir %s still there after Close: %v", n.Dir(), err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
