// Command balance puts onion services behind one onion address with
// Onionbalance, on a private Tor network on 127.0.0.1, and measures it:
//
//	go run ./examples/balance        # needs tor and onionbalance installed (make demo installs them)
//
// It starts a private Tor network (package tortest, with the voting
// interval and HSDirs that onionbalance's testnet mode needs), then four
// tors on it: two backends, each an on-disk onion service made an
// Onionbalance instance of a master address; a frontend, which runs
// onionbalance with the master key (package balance); and a client. The
// client fetches pages from the master address over isolated circuits
// until both backends have answered; then one backend's tor is killed and
// the client fetches again (failover); then a third backend is started
// and added to the frontend, and the client fetches until it answers.
// Nothing leaves 127.0.0.0/8.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/balance"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/tortest"
)

func main() {
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	verbose := flag.Bool("v", false, "show onionbalance's log lines")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if _, err := run(ctx, os.Stdout, os.Stderr, logger); err != nil {
		log.Fatal(err)
	}
}

// authorities is the number of directory authorities, the network's
// HSDirs: onionbalance 0.2.2 needs 5 in its view of the network, which
// can lack a relay's microdescriptor for a while.
const authorities = balance.MinHSDirs + 2

// Results are what run measured.
type Results struct {
	Master string
	// Answered is the time from starting onionbalance to the first page
	// fetched from the master address; Published from starting it to the
	// master descriptor's upload.
	Answered, Published time.Duration
	// Served counts the pages each backend served before the failover.
	Served map[string]int
	// Failover is the time from killing backend A's tor to the next page
	// fetched from the master address (served by B).
	Failover time.Duration
	// Added is the time from SetBackends (C added, A removed) to the first
	// page served by C; AddedPublished to the new master descriptor.
	Added, AddedPublished time.Duration
}

// run does the whole scenario; results go to out, progress to status.
func run(ctx context.Context, out, status io.Writer, logger *slog.Logger) (*Results, error) {
	say := func(format string, args ...any) { fmt.Fprintf(status, format+"\n", args...) }
	res := &Results{Served: map[string]int{}}

	say("starting a private Tor network on 127.0.0.1 (%d authorities, voting every %v) ...", authorities, balance.TestnetVotingInterval)
	t0 := time.Now()
	network, err := tortest.Start(ctx, tortest.Options{
		// Onionbalance's testnet mode assumes a 20-second voting interval
		// and needs at least 5 HSDirs (the authorities), with a margin.
		Authorities:    authorities,
		Relays:         1,
		VotingInterval: balance.TestnetVotingInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("private network: %w", err)
	}
	defer network.Close()
	say("network ready in %.1fs", time.Since(t0).Seconds())

	dir, err := os.MkdirTemp("", "gotorcon-balance-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	say("starting four tors: backends A and B, the frontend, the client ...")
	t0 = time.Now()
	tors, err := startTors(ctx, network, 4)
	if err != nil {
		return nil, err
	}
	torA, torB, torFront, torClient := tors[0], tors[1], tors[2], tors[3]
	defer torA.Close() // killed on the way
	defer torB.Close()
	defer torFront.Close()
	defer torClient.Close()
	say("tors bootstrapped in %.1fs", time.Since(t0).Seconds())

	master, err := onion.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	res.Master = master.Hostname()
	fmt.Fprintf(out, "master address: %s\n", res.Master)

	// The backends: on-disk services that are instances of the master.
	var backends sync.WaitGroup
	defer backends.Wait()
	backend := func(t *tor.Tor, name string) (*onion.Listener, error) {
		ln, err := t.ListenDir(ctx, &onion.DirConfig{
			Dir:                 filepath.Join(dir, name),
			Ports:               []int{80},
			OnionbalanceMasters: []string{master.Hostname()},
		})
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "served by backend %s\n", name)
		})}
		backends.Add(1)
		go func() {
			defer backends.Done()
			srv.Serve(ln) // ends when ln is closed
		}()
		fmt.Fprintf(out, "backend %s: %s\n", name, ln.Hostname())
		return ln, nil
	}
	lnA, err := backend(torA, "A")
	if err != nil {
		return nil, err
	}
	defer lnA.Close()
	lnB, err := backend(torB, "B")
	if err != nil {
		return nil, err
	}
	defer lnB.Close()

	say("starting onionbalance on the frontend's tor ...")
	fe := &balance.Frontend{Key: master, Backends: []string{lnA.Hostname(), lnB.Hostname()}, Logger: logger}
	start := time.Now()
	if err := fe.Start(ctx, torFront.Launched()); err != nil {
		return nil, err
	}
	defer fe.Close()
	if err := waitPublished(ctx, fe); err != nil {
		return nil, err
	}
	res.Published = time.Since(start)
	say("master descriptor published %.1fs after onionbalance started", res.Published.Seconds())

	dialer, err := torClient.Dialer(ctx)
	if err != nil {
		return nil, err
	}
	c := &client{dialer: dialer, url: "http://" + master.Hostname() + "/", status: status, tor: torClient}

	// 1. The master address answers; 2. both backends serve.
	_, err = c.until(ctx, "the first page", func(string) bool { return true }, func(name string) {
		res.Answered = time.Since(start)
		res.Served[name]++
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "measure: start to answer %.1fs (master descriptor published after %.1fs)\n", res.Answered.Seconds(), res.Published.Seconds())
	// Each fetch as a new client would make it (NEWNYM: tor forgets the
	// descriptors it has), so that each sees the latest master descriptor.
	c.newnym = true
	_, err = c.until(ctx, "pages from both backends", func(string) bool { return res.Served["A"] > 0 && res.Served["B"] > 0 }, func(name string) {
		res.Served[name]++
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "spread: A served %d, B served %d\n", res.Served["A"], res.Served["B"])

	// 3. Backend A's tor dies; the master address still answers.
	say("killing backend A's tor (pid %d) ...", torA.Launched().Process().Pid())
	if p, err := os.FindProcess(torA.Launched().Process().Pid()); err == nil {
		p.Kill()
	}
	// The client that fetched last keeps its master descriptor: how long
	// until it gets a page again?
	c.newnym = false
	killed := time.Now()
	lnA.Close()
	torA.Close()
	name, err := c.until(ctx, "a page after the failover", func(string) bool { return true }, nil)
	if err != nil {
		return nil, err
	}
	res.Failover = time.Since(killed)
	fmt.Fprintf(out, "measure: failover %.1fs (answered by %s)\n", res.Failover.Seconds(), name)

	// 4. Backend C joins (and the dead A leaves); C receives traffic.
	torC, err := startTors(ctx, network, 1)
	if err != nil {
		return nil, err
	}
	defer torC[0].Close()
	lnC, err := backend(torC[0], "C")
	if err != nil {
		return nil, err
	}
	defer lnC.Close()
	added := time.Now()
	if err := fe.SetBackends(ctx, []string{lnB.Hostname(), lnC.Hostname()}); err != nil {
		return nil, err
	}
	if err := waitPublished(ctx, fe); err != nil {
		return nil, err
	}
	res.AddedPublished = time.Since(added)
	say("new master descriptor published %.1fs after SetBackends", res.AddedPublished.Seconds())
	// A client keeps the master descriptor it has while its introduction
	// points answer: new clients get the new one.
	c.newnym = true
	if _, err := c.until(ctx, "a page from backend C", func(name string) bool { return name == "C" }, nil); err != nil {
		return nil, err
	}
	res.Added = time.Since(added)
	fmt.Fprintf(out, "measure: added backend C served %.1fs after SetBackends (new master descriptor after %.1fs)\n", res.Added.Seconds(), res.AddedPublished.Seconds())
	return res, nil
}

// publishTimeout bounds the wait for a master descriptor: onionbalance
// publishes within 45 s of its start, or on the next consensus (every
// 20 s here), once it has its backends' descriptors.
const publishTimeout = 3 * time.Minute

func waitPublished(ctx context.Context, fe *balance.Frontend) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return fe.WaitPublished(ctx)
}

// startTors starts n tors on the network at once.
func startTors(ctx context.Context, network *tortest.Network, n int) ([]*tor.Tor, error) {
	tors := make([]*tor.Tor, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range tors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tors[i], errs[i] = tor.Start(ctx, &tor.Options{Network: network.ClientTorrc()})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, t := range tors {
			if t != nil {
				t.Close()
			}
		}
		return nil, err
	}
	return tors, nil
}

// client fetches pages from the master address, each over a circuit of
// its own.
type client struct {
	dialer *onion.Dialer
	url    string
	status io.Writer
	tor    *tor.Tor
	// newnym sends NEWNYM before each fetch: tor forgets the onion
	// service descriptors it has (tor delays it to once per 10 s).
	newnym bool
}

// Bounds of client.until: tor's onion-service errors are worth retrying
// (introduction points come and go every 10-30 s on a test network, and a
// master descriptor can name some that are gone), but not forever.
const (
	maxAttempts     = 60
	attemptTimeout  = 60 * time.Second
	pauseAfterError = time.Second
)

// until fetches pages until done returns true for the backend that served
// one, calling served for each page; it returns that backend. Failed
// fetches are retried (with their reason said) up to maxAttempts fetches.
func (c *client) until(ctx context.Context, what string, done func(string) bool, served func(string)) (string, error) {
	var lastErr error
	for i := 1; i <= maxAttempts; i++ {
		if c.newnym {
			if err := c.tor.Control().Signal(ctx, "NEWNYM"); err != nil {
				return "", err
			}
		}
		name, err := c.get(ctx)
		if err == nil {
			if served != nil {
				served(name)
			}
			if done(name) {
				return name, nil
			}
			continue
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), err)
		}
		lastErr = err
		fmt.Fprintf(c.status, "  fetch %d for %s: %v; trying again\n", i, what, err)
		select {
		case <-ctx.Done():
		case <-time.After(pauseAfterError):
		}
	}
	if lastErr == nil {
		return "", fmt.Errorf("no %s in %d fetches", what, maxAttempts)
	}
	return "", fmt.Errorf("no %s in %d fetches; last error: %w", what, maxAttempts, lastErr)
}

// get fetches the page over a new circuit and returns the backend's name.
func (c *client) get(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	tr := c.dialer.Isolated().HTTPClient().Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	name, ok := strings.CutPrefix(strings.TrimSpace(string(body)), "served by backend ")
	if !ok {
		return "", fmt.Errorf("GET %s: unexpected page %q", c.url, body)
	}
	return name, nil
}
