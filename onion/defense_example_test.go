package onion_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
)

// An on-disk service that insists on PoW, spreads introductions over more
// introduction points, and learns each client's circuit so that it can
// cut abusive clients off.
func ExampleDirConfig_underAttack() {
	var conn *control.Conn // from launch.Private(...).Control()
	ctx := context.Background()
	ln, err := (&onion.DirConfig{
		Dir:             "/var/lib/myapp/onion",
		PoW:             onion.PoW{Mode: onion.PoWOn, QueueRate: 50, QueueBurst: 500},
		IntroPoints:     6,
		ExportCircuitID: true,
		MaxStreams:      16, MaxStreamsCloseCircuit: true,
	}).Listen(ctx, conn)
	if err != nil {
		log.Fatal(err) // errors.Is(err, onion.ErrPoWUnsupported) on a tor without PoW
	}
	defer ln.Close()
	abusive := func(circuit string) bool { return false } // the application's policy
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		id, err := c.(*onion.CircuitConn).CircuitID()
		if err != nil || abusive(id) {
			ln.CloseClient(ctx, c) // every stream on that circuit ends
			c.Close()
			continue
		}
		go func() { defer c.Close(); io.Copy(c, c) }()
	}
}

func ExampleParseProxyHeader() {
	// The line tor 0.4.9 writes first on a connection to a service with
	// HiddenServiceExportCircuitID haproxy.
	h, err := onion.ParseProxyHeader("PROXY TCP6 fc00:dead:beef:4dad::0:10 ::1 16 81\r\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("circuit", h.CircuitID, "port", h.VirtPort)
	// Output: circuit 16 port 81
}
