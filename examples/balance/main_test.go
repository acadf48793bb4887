package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/internal/syncbuf"
)

// TestBalanceOffline runs the demo end to end on a private network: the
// master address answers, both backends serve, the master address still
// answers after one backend's tor is killed, and a backend added later
// serves. It is the end-to-end test of package balance (one run of the
// whole sequence, about 2 minutes, most of it onionbalance's own start-up
// schedule).
func TestBalanceOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network, five tors and onionbalance (about 2 minutes)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out, status syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&status, &slog.HandlerOptions{Level: slog.LevelInfo}))
	res, err := run(ctx, &out, &status, logger)
	t.Logf("output:\n%s", out.String())
	if err != nil || t.Failed() {
		t.Logf("progress and logs:\n%s", status.String())
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Served["A"] == 0 || res.Served["B"] == 0 {
		t.Errorf("both backends should have served pages: %v", res.Served)
	}
	if res.Failover <= 0 || res.Added <= 0 || res.Answered < res.Published {
		t.Errorf("measurements missing or inconsistent: %+v", res)
	}
	for _, want := range []string{"master address: " + res.Master, "measure: start to answer", "measure: failover", "measure: added backend C served"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	t.Logf("start to answer %.1fs (published %.1fs), failover %.1fs, added backend served after %.1fs (published %.1fs), spread %v",
		res.Answered.Seconds(), res.Published.Seconds(), res.Failover.Seconds(), res.Added.Seconds(), res.AddedPublished.Seconds(), res.Served)
	if kids := children(); len(kids) > 0 {
		t.Errorf("processes left running after run returned: %v", kids)
	}
}

// children lists the processes whose parent is this test (Linux).
func children() []string {
	if runtime.GOOS != "linux" {
		return nil
	}
	me := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == me && f[0] != "Z" {
			out = append(out, strings.TrimSpace(s[:i+1]))
		}
	}
	return out
}
