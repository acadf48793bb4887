//go:build unix

package launch

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/internal/testtor"
	"github.com/gotorcon/tor/process"
)

// A tor that dies at once: Private reports its [err] line before the
// deadline and leaves nothing behind.
func TestPrivateFakeTorExits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tor")
	testtor.WriteExecutable(path, []byte(`#!/bin/sh
if [ "$1" = "--version" ]; then echo "Tor version 0.4.9.11."; exit 0; fi
echo "Nov 22 08:00:00.000 [err] Reading config failed--see warnings above."
exit 1
`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Private(ctx, Options{Path: path})
	if !errors.Is(err, process.ErrExited) || !strings.Contains(err.Error(), "Reading config failed") {
		t.Fatalf("Private = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	t.Log(err)
}
