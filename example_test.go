package tor_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"os"

	tor "github.com/gotorcon/tor"
)

// A first program: start tor, publish a web site as an onion service, and
// fetch it back through Tor. (Not run: it joins the public Tor network; set
// Options.Network to a tortest network to run it offline.)
func Example() {
	t, err := tor.Start(context.Background(), nil) // bootstrapped; its state kept for the next run
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen(context.Background(), 80) // returns once the service is published
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") }))
	resp, err := t.HTTPClient().Get("http://" + ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	resp.Write(os.Stdout) // prints the response, then closes its body
}
