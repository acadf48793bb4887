package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// TestHelloOffline runs the demo end to end on a private network, as
// `make demo` does: an onion service published and a page fetched from it
// through Tor.
func TestHelloOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network (about 15 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, status bytes.Buffer
	err := run(ctx, &out, &status, false)
	t.Logf("progress:\n%s", status.String())
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^onion address: ([a-z2-7]{56}\.onion:80)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no onion address in output:\n%s", out.String())
	}
	want := "page: Hello from " + m[1][:len(m[1])-3] + ", served through Tor!\n"
	if !bytes.Contains(out.Bytes(), []byte(want)) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}
