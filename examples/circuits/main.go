// Command circuits builds a Tor circuit through relays it chooses, fetches
// a page over that circuit, and prints the path.
//
//	go run ./examples/circuits                      # guard, middle and exit chosen by the program
//	go run ./examples/circuits -path relay2,relay0,relay3
//
// It starts a private Tor network on 127.0.0.1 (package tortest: a
// directory authority and four relays, the last one an exit that accepts
// 127.0.0.1 only) and an HTTP server on 127.0.0.1, then a tor client;
// nothing leaves 127.0.0.0/8. Relays are named by nickname or fingerprint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/torstate"
	"github.com/gotorcon/tor/tortest"
)

func main() {
	path := flag.String("path", "", "comma-separated relays (nicknames or fingerprints), first hop first; default: a guard, a middle and the exit")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var hops []string
	if *path != "" {
		hops = strings.Split(*path, ",")
	}
	if err := run(ctx, os.Stdout, os.Stderr, hops); err != nil {
		log.Fatal(err)
	}
}

// run does it all; the path and the page go to out, progress to status.
func run(ctx context.Context, out, status io.Writer, hops []string) error {
	fmt.Fprintln(status, "starting a private Tor network on 127.0.0.1 ...")
	n, err := tortest.Start(ctx, tortest.Options{})
	if err != nil {
		return fmt.Errorf("private network: %w", err)
	}
	defer n.Close()

	// The web site: an HTTP server on loopback, reached through the exit.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s, fetched over a circuit of your choice!\n", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintln(status, "starting a tor client ...")
	t, err := launch.Private(ctx, launch.Options{Network: n.ClientTorrc()})
	if err != nil {
		return err
	}
	defer t.Close()
	// The State logs what it works around (a stream it had to close, ...).
	logger := slog.New(slog.NewTextHandler(status, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := torstate.New(ctx, t.Control(), &torstate.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer st.Close()

	if len(hops) == 0 {
		hops = defaultPath(n)
	}
	var path []string
	for _, h := range hops {
		r, ok := st.Relay(h)
		if !ok {
			return fmt.Errorf("no relay %q in the consensus", h)
		}
		path = append(path, r.Fingerprint)
	}
	circ, err := st.BuildCircuit(ctx, path)
	var ce *torstate.CircuitError
	if errors.As(err, &ce) {
		return fmt.Errorf("tor could not build the circuit: %w", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "circuit %s:\n", circ.ID)
	for i, r := range circ.Path {
		country := r.Country
		if country == "" {
			country = "??"
		}
		fmt.Fprintf(out, "  hop %d: %-8s %s %s:%d [%s] %s\n", i+1, r.Nickname, r.Fingerprint, r.Address, r.ORPort, country, strings.Join(r.Flags, " "))
	}

	d, err := st.Dialer(ctx, circ.ID)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := d.HTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s over circuit %s: %w", url, circ.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	fmt.Fprintf(out, "page: %s", body)
	return nil
}

// defaultPath is two non-exit relays and the network's exit, by nickname.
func defaultPath(n *tortest.Network) []string {
	var path []string
	var exit string
	for _, nd := range n.Nodes() {
		switch {
		case nd.Exit:
			exit = nd.Nickname
		case nd.Role == tortest.Relay && len(path) < 2:
			path = append(path, nd.Nickname)
		}
	}
	return append(path, exit)
}
