// Command hello is gotorcon's demo: it publishes an HTTP onion service and
// fetches a page from it through Tor, then prints the onion address and the
// page.
//
//	go run ./examples/hello           # offline, on a private Tor network on 127.0.0.1
//	go run ./examples/hello -public   # on the public Tor network (needs internet access)
//
// By default it starts a private Tor network (package tortest: a directory
// authority and four relays on loopback), so it runs with no internet at
// all; nothing it does leaves 127.0.0.0/8.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/tortest"
)

func main() {
	public := flag.Bool("public", false, "use the public Tor network instead of a private one on loopback")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Stderr, *public); err != nil {
		log.Fatal(err)
	}
}

// run does the whole round trip; the page and the address go to out, the
// progress to status.
func run(ctx context.Context, out, status io.Writer, public bool) error {
	status = &lockedWriter{w: status} // Warning runs concurrently with the rest
	opts := &tor.Options{
		Progress: progressBar(status),
		Warning: func(msg string) {
			if !public && (strings.Contains(msg, "TestingTorNetwork") || strings.Contains(msg, "DirAuthority")) {
				return // expected on a private test network
			}
			fmt.Fprintf(status, "\ntor warning: %s\n", msg)
		},
	}
	if !public {
		fmt.Fprintln(status, "starting a private Tor network on 127.0.0.1 ...")
		start := time.Now()
		n, err := tortest.Start(ctx, tortest.Options{})
		if err != nil {
			return fmt.Errorf("private network: %w", err)
		}
		defer n.Close()
		fmt.Fprintf(status, "private network ready in %.1fs\n", time.Since(start).Seconds())
		opts.Network = n.ClientTorrc()
	}

	fmt.Fprintln(status, "starting tor ...")
	t, err := tor.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Close()

	fmt.Fprintln(status, "publishing an onion service ...")
	ln, err := t.ListenConfig(ctx, &onion.ListenConfig{
		Ports: []int{80},
		Progress: func(p onion.Progress) {
			if p.Uploads > 0 {
				fmt.Fprintf(status, "\r  descriptors uploaded: %d of %d", p.Uploaded, p.Uploads)
			}
		},
	})
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintln(status)

	addr := ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s, served through Tor!\n", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(out, "onion address: %s\n", addr)
	page, err := fetch(ctx, t.HTTPClient(), "http://"+ln.Hostname()+"/", status)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "page: %s", page)
	return nil
}

// fetch gets url, trying again (a bounded number of times, saying why)
// when tor reports an onion-service error that a retry can cure: just
// after publication, intro points may still be settling.
func fetch(ctx context.Context, c *http.Client, url string, status io.Writer) (string, error) {
	const attempts = 5
	var lastErr error
	for i := 1; i <= attempts; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return "", err
			}
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			return string(body), nil
		}
		lastErr = err
		var se *onion.SOCKSError
		if !errors.As(err, &se) || !se.Temporary() || ctx.Err() != nil {
			return "", err
		}
		fmt.Fprintf(status, "fetch attempt %d of %d: %v; trying again\n", i, attempts, se)
	}
	return "", fmt.Errorf("GET %s: %d attempts failed, last: %w", url, attempts, lastErr)
}

// progressBar draws tor's bootstrap progress on one line.
func progressBar(w io.Writer) func(*control.Bootstrap) {
	return func(b *control.Bootstrap) {
		const width = 30
		filled := b.Progress * width / 100
		fmt.Fprintf(w, "\r  bootstrap [%s%s] %3d%% %-45.45s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), b.Progress, b.Summary)
		if b.Done() {
			fmt.Fprintln(w)
		}
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
