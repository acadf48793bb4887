// Command client fetches a URL through Tor and prints the response body.
//
//	go run ./examples/client https://check.torproject.org/
//
// By default it starts a private tor on the public Tor network (which needs
// internet access); -control attaches to a running tor instead, such as the
// system tor (-control unix:/run/tor/control) or one you started yourself.
// Names, .onion included, are resolved by tor, never locally.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
)

func main() {
	controlAddr := flag.String("control", "", "attach to the tor at this control endpoint (tcp:HOST:PORT or unix:PATH) instead of starting one")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-control ENDPOINT] URL\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*controlAddr, flag.Arg(0), *timeout, os.Stdout, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// run fetches url through tor, writing the body to out and progress to
// status.
func run(controlAddr, url string, timeout time.Duration, out, status io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts := &tor.Options{Progress: func(b *control.Bootstrap) {
		fmt.Fprintf(status, "\rbootstrapping %3d%% %-50s", b.Progress, b.Summary)
		if b.Done() {
			fmt.Fprintln(status)
		}
	}}
	if controlAddr != "" {
		network, address, ok := strings.Cut(controlAddr, ":")
		if !ok || (network != "tcp" && network != "unix") {
			return fmt.Errorf("-control %q: want tcp:HOST:PORT or unix:PATH", controlAddr)
		}
		opts.Mode = tor.System
		opts.System = launch.SystemOptions{
			Endpoints: []launch.Endpoint{{Network: network, Address: address}},
		}
	}
	t, err := tor.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Close()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := t.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintln(status, resp.Status)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
