package launch_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
)

// Launch a private tor with its network off (no traffic at all), use its
// control connection, and stop it.
func ExamplePrivate() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tor, err := launch.Private(ctx, launch.Options{NoNetwork: true})
	if err != nil {
		log.Fatal(err)
	}
	defer tor.Close() // stops tor and removes its temporary directory

	phase, err := tor.Control().GetInfoValue(ctx, "status/bootstrap-phase")
	if err != nil {
		log.Fatal(err)
	}
	b, _ := control.ParseBootstrap(phase)
	fmt.Println(b.Progress, b.Tag)
	// Output: 0 starting
}

// Launch a tor and follow its bootstrap. (Not run: it would contact the
// public Tor network.)
func ExamplePrivate_bootstrap() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tor, err := launch.Private(ctx, launch.Options{
		Progress: func(b *control.Bootstrap) { log.Printf("bootstrap %d%%: %s", b.Progress, b.Summary) },
		Warning:  func(b *control.Bootstrap) { log.Printf("bootstrap problem: %s (%s)", b.Warning, b.Reason) },
	})
	if err != nil {
		log.Fatal(err) // a *launch.BootstrapError tells where it stopped and why
	}
	defer tor.Close()
	socks, err := tor.SocksAddr(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("SOCKS proxy at", socks)
}

// Share one tor between the parts of a program.
func ExampleGlobal() {
	ctx := context.Background()
	a, err := launch.Global(ctx, launch.Options{NoNetwork: true})
	if err != nil {
		log.Fatal(err)
	}
	b, err := launch.Global(ctx, launch.Options{NoNetwork: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Process().Pid() == b.Process().Pid())
	a.Close()
	b.Close() // the last Close stops tor
	// Output: true
}

// Attach to the tor of the system (not run: it needs one).
func ExampleSystem() {
	ctx := context.Background()
	tor, err := launch.System(ctx, launch.SystemOptions{
		Password: func(context.Context) (string, error) { return "my control password", nil },
	})
	if err != nil {
		log.Fatal(err) // lists every endpoint and method tried
	}
	defer tor.Close() // closes our connection only
	v, _ := tor.Control().GetInfoValue(ctx, "version")
	fmt.Println("attached to tor", v)
}
