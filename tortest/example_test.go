package tortest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/tortest"
)

// Start a private network and bootstrap a tor on it.
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	network, err := tortest.Start(ctx, tortest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer network.Close()

	// ClientTorrc is what a tor needs to join the network.
	fmt.Println(network.ClientTorrc().Keys())
	tor, err := launch.Private(ctx, launch.Options{Network: network.ClientTorrc()})
	if err != nil {
		log.Fatal(err)
	}
	defer tor.Close()

	phase, err := tor.Control().GetInfoValue(ctx, "status/bootstrap-phase")
	if err != nil {
		log.Fatal(err)
	}
	b, err := control.ParseBootstrap(phase)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("nodes:", len(network.Nodes()))
	fmt.Println("bootstrapped:", b.Progress)
	// Output:
	// [TestingTorNetwork DirAuthority GeoIPFile GeoIPv6File]
	// nodes: 5
	// bootstrapped: 100
}
