package process_test

import (
	"bufio"
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

	conn := p.Control() // already authenticated
	fmt.Fprintf(conn, "GETINFO status/bootstrap-phase\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	fmt.Println(strings.Contains(line, "PROGRESS=0 TAG=starting"))
	// Output: true
}
