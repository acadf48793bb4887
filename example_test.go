package tor_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"

	tor "github.com/gotorcon/tor"
)

// A first program: start tor, publish a web site as an onion service, and
// fetch it back through Tor.
func Example() {
	ctx := context.Background()
	t, err := tor.Start(ctx, nil) // a private tor, bootstrapped; add Network: for a tortest network
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen(ctx, 80) // returns once the service is published
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }))
	resp, err := t.HTTPClient().Get("http://" + ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s says %s", ln.Addr(), body)
}
