package onion_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/onion"
)

// A service whose key is kept in a directory has the same address on every
// run. conn is an authenticated control connection to a tor that may
// write that directory (for example launch.Private's Control).
func ExampleDirConfig() {
	var conn *control.Conn // from launch.Private(...).Control() or control.Connect
	ctx := context.Background()
	ln, err := (&onion.DirConfig{Dir: "/var/lib/myapp/onion", Ports: []int{80}}).Listen(ctx, conn)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println("serving on", ln.Addr())
	log.Fatal(http.Serve(ln, http.NotFoundHandler()))
}

// Client authorization: the service lists the client's public key, the
// client's tor gets the private key.
func ExampleGenerateClientKey() {
	var service, client *control.Conn // control connections to two tors
	ctx := context.Background()
	key, err := onion.GenerateClientKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := (&onion.ListenConfig{ClientAuth: []onion.ClientPublicKey{key.Public()}}).Listen(ctx, service)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	if _, err := onion.AddClientAuth(ctx, client, onion.ClientAuth{Address: ln.ServiceID(), Key: key}); err != nil {
		log.Fatal(err)
	}
}
