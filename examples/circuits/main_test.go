package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// TestCircuits runs the example on a private network with a path given by
// nickname: the printed path must be exactly those relays, and the page
// must come back.
func TestCircuits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network (about 15 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, status bytes.Buffer
	err := run(ctx, &out, &status, []string{"relay2", "relay0", "relay3"})
	t.Logf("progress:\n%s", status.String())
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	hops := regexp.MustCompile(`(?m)^  hop (\d): (\S+) +([0-9A-F]{40}) 127\.0\.0\.1:\d+`).FindAllStringSubmatch(out.String(), -1)
	if len(hops) != 3 || hops[0][2] != "relay2" || hops[1][2] != "relay0" || hops[2][2] != "relay3" {
		t.Fatalf("path is not relay2, relay0, relay3:\n%s", out.String())
	}
	if !regexp.MustCompile(`(?m)^page: Hello from 127\.0\.0\.1:\d+, fetched over a circuit of your choice!$`).Match(out.Bytes()) {
		t.Fatalf("no page in output:\n%s", out.String())
	}
	t.Logf("output:\n%s", out.String())

}
