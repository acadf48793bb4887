package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/tortest"
)

// TestOnionizeDirAndPort publishes a directory and a local port on a
// private network, fetches both through a second tor, and checks that
// cancelling removes the services.
func TestOnionizeDirAndPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n := tortest.NewNetwork(t)
	client, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("onionized directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	local, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	go http.Serve(local, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "onionized port\n") }))

	keyDir := filepath.Join(t.TempDir(), "key")
	urls := map[string]string{}
	for _, tc := range []struct {
		name string
		cfg  config
		want string
	}{
		{"dir", config{dir: dir, virtPort: 80}, "onionized directory\n"},
		{"port", config{port: local.Addr().(*net.TCPAddr).Port, virtPort: 8080}, "onionized port\n"},
		// -keydir: two runs, two tors, one address.
		{"keydir-1", config{dir: dir, virtPort: 80, keyDir: keyDir}, "onionized directory\n"},
		{"keydir-2", config{port: local.Addr().(*net.TCPAddr).Port, virtPort: 80, keyDir: keyDir}, "onionized port\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runCtx, stop := context.WithCancel(ctx)
			ready := make(chan string, 1)
			done := make(chan error, 1)
			var out, status bytes.Buffer
			go func() { done <- run(runCtx, tc.cfg, n.ClientTorrc(), &out, &status, ready) }()
			var url string
			select {
			case url = <-ready:
			case err := <-done:
				t.Fatalf("run: %v\n%s", err, status.String())
			}
			urls[tc.name] = url
			body, err := get(ctx, t, client, url)
			if err != nil {
				stop()
				t.Fatalf("GET %s: %v", url, err)
			}
			if body != tc.want {
				t.Errorf("GET %s = %q, want %q", url, body, tc.want)
			}
			stop()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("run after Ctrl-C: %v", err)
			}
		})
	}
	if urls["keydir-1"] == "" || urls["keydir-1"] != urls["keydir-2"] {
		t.Errorf("-keydir gave %q, then %q; want one address", urls["keydir-1"], urls["keydir-2"])
	}
	if urls["keydir-1"] == urls["dir"] {
		t.Errorf("-keydir reused the address of an ephemeral service")
	}
}

// get fetches url through tor, retrying a bounded number of times on the
// onion-service errors that are normal right after publication.
func get(ctx context.Context, t *testing.T, c *tor.Tor, url string) (string, error) {
	var err error
	for i := 0; i < 5; i++ {
		var resp *http.Response
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err = c.HTTPClient().Do(req)
		if err == nil {
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		var se *onion.SOCKSError
		if !errors.As(err, &se) || !se.Temporary() {
			return "", err
		}
		t.Logf("attempt %d: %v; trying again", i+1, err)
	}
	return "", err
}
