package process_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/process"
)

// Start an offline tor, ask it its bootstrap phase on the owning control
// connection, and stop it.
func ExampleStart() {
	p, err := process.Start(context.Background(), process.Options{
		Torrc: new(config.Torrc).Add("DisableNetwork", "1"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // stops tor and removes its temporary directory

	phase, err := p.Control().GetInfoValue(context.Background(), "status/bootstrap-phase") // already authenticated
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Contains(phase, "PROGRESS=0 TAG=starting"))
	// Output: true
}
