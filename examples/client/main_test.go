package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/tortest"
)

// TestClientFetchesOnion attaches the client to a tor on a private network
// (-control) and fetches a page from an onion service published by another.
func TestClientFetchesOnion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := tortest.NewNetwork(t)

	service, err := tor.Start(ctx, &tor.Options{Network: n.ClientTorrc()})
	if err != nil {
		t.Fatal(err)
	}
	defer service.Close()
	ln, err := service.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fetched "+r.URL.Path+"\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client, err := launch.Private(ctx, launch.Options{Network: n.ClientTorrc()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	network, address := client.ControlAddr()
	url := "http://" + ln.Hostname() + "/page"

	// Right after publication a first attempt can meet a descriptor still
	// on its way; retry a bounded number of times, saying why.
	for attempt := 1; ; attempt++ {
		var out, status bytes.Buffer
		err := run(network+":"+address, url, time.Minute, &out, &status)
		if err == nil {
			if got := out.String(); got != "fetched /page\n" {
				t.Fatalf("body %q, want %q", got, "fetched /page\n")
			}
			return
		}
		var se *onion.SOCKSError
		if attempt == 3 || !errors.As(err, &se) || !se.Temporary() {
			t.Fatalf("run (attempt %d): %v\n%s", attempt, err, status.String())
		}
		t.Logf("attempt %d: %v; trying again", attempt, err)
	}
}

func TestClientBadControl(t *testing.T) {
	var out, status bytes.Buffer
	err := run("ftp:127.0.0.1:1", "http://example.onion/", time.Second, &out, &status)
	if err == nil {
		t.Fatal("a bad -control endpoint was accepted")
	}
}
