// Command onionize exposes a local TCP port or a directory as an onion
// service, prints its address and keeps it up until Ctrl-C, which removes
// the service and stops tor.
//
//	go run ./examples/onionize -dir ./public          # serve a directory over HTTP
//	go run ./examples/onionize -port 8080             # forward onion port 80 to 127.0.0.1:8080
//	go run ./examples/onionize -private -dir ./public # offline, on a private Tor network
//	go run ./examples/onionize -keydir ./key -dir ./public # the same address every run
//
// Without -private it joins the public Tor network (which needs internet
// access).
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
	"strconv"
	"strings"
	"syscall"

	tor "github.com/gotorcon/tor"
	torconfig "github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
	"github.com/gotorcon/tor/tortest"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.dir, "dir", "", "serve this directory over HTTP")
	flag.IntVar(&cfg.port, "port", 0, "forward the onion service to this port on 127.0.0.1")
	flag.IntVar(&cfg.virtPort, "virtport", 80, "the onion service's port")
	flag.StringVar(&cfg.keyDir, "keydir", "", "keep the service's key in this directory (a tor HiddenServiceDir), for the same address on every run")
	flag.BoolVar(&cfg.private, "private", false, "use a private Tor network on loopback (offline) instead of the public one")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := start(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func start(ctx context.Context, cfg config) error {
	var network *torconfig.Torrc
	if cfg.private {
		fmt.Fprintln(os.Stderr, "starting a private Tor network on 127.0.0.1 ...")
		n, err := tortest.Start(ctx, tortest.Options{})
		if err != nil {
			return err
		}
		defer n.Close()
		network = n.ClientTorrc()
	}
	return run(ctx, cfg, network, os.Stdout, os.Stderr, nil)
}

type config struct {
	dir      string
	port     int
	virtPort int
	keyDir   string
	private  bool
}

// run publishes the service on a tor that joins network (nil: the public
// Tor network) and serves until ctx ends. ready, if not nil, receives the
// service's URL once it is published.
func run(ctx context.Context, cfg config, network *torconfig.Torrc, out, status io.Writer, ready chan<- string) error {
	if (cfg.dir == "") == (cfg.port == 0) {
		return errors.New("give exactly one of -dir and -port")
	}
	opts := &tor.Options{Progress: func(b *control.Bootstrap) {
		fmt.Fprintf(status, "\rbootstrap %s %3d%% %-45.45s", bar(b.Progress, 100), b.Progress, b.Summary)
		if b.Done() {
			fmt.Fprintln(status)
		}
	}}
	opts.Network = network
	t, err := tor.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Close()

	progress := func(p onion.Progress) {
		if p.Uploads > 0 {
			fmt.Fprintf(status, "\rpublish   %s %d of %d descriptor uploads done", bar(p.Uploaded+p.Failed, p.Uploads), p.Uploaded+p.Failed, p.Uploads)
		}
	}
	var ports []int
	var targets []control.OnionPort
	if cfg.port != 0 {
		// tor forwards straight to the local port; the listener accepts nothing.
		targets = []control.OnionPort{{VirtPort: cfg.virtPort, Target: "127.0.0.1:" + strconv.Itoa(cfg.port)}}
	} else {
		ports = []int{cfg.virtPort}
	}
	var ln *onion.Listener
	if cfg.keyDir != "" {
		ln, err = t.ListenDir(ctx, &onion.DirConfig{Dir: cfg.keyDir, Ports: ports, Targets: targets, Progress: progress})
	} else {
		ln, err = t.ListenConfig(ctx, &onion.ListenConfig{Ports: ports, Targets: targets, Progress: progress})
	}
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintln(status)

	url := "http://" + ln.Hostname()
	if cfg.virtPort != 80 {
		url += ":" + strconv.Itoa(cfg.virtPort)
	}
	fmt.Fprintf(out, "%s\n", url)
	if ready != nil {
		ready <- url
	}
	fmt.Fprintln(status, "serving; Ctrl-C removes the service and stops tor")

	if cfg.dir == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(cfg.dir))}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}

func bar(n, of int) string {
	const width = 20
	if of <= 0 {
		return "[" + strings.Repeat(".", width) + "]"
	}
	filled := min(n*width/of, width)
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}
