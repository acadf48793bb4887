package torstate_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/torstate"
)

// Build a circuit through chosen relays and fetch a page over it.
func Example() {
	ctx := context.Background()
	t, err := launch.Private(ctx, launch.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	st, err := torstate.New(ctx, t.Control(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// Three relays of the consensus: a guard, a middle and an exit.
	var guard, middle, exit string
	for _, r := range st.Relays() {
		switch {
		case exit == "" && r.HasFlag("Exit") && !r.HasFlag("BadExit"):
			exit = r.Fingerprint
		case guard == "" && r.HasFlag("Guard"):
			guard = r.Fingerprint
		case middle == "" && r.HasFlag("Fast"):
			middle = r.Fingerprint
		}
	}
	circ, err := st.BuildCircuit(ctx, []string{guard, middle, exit})
	if err != nil {
		log.Fatal(err) // a *torstate.CircuitError says why tor gave up
	}
	for i, r := range circ.Path {
		fmt.Printf("hop %d: %s %s (%s) %s\n", i+1, r.Nickname, r.Fingerprint, r.Country, r.Address)
	}

	d, err := st.Dialer(ctx, circ.ID) // its streams use circ, and only circ
	if err != nil {
		log.Fatal(err)
	}
	resp, err := d.HTTPClient().Get("https://check.torproject.org/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
}

// An attacher sends every new stream to a circuit of the program's choice.
func ExampleState_SetAttacher() {
	ctx := context.Background()
	t, err := launch.Private(ctx, launch.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	st, err := torstate.New(ctx, t.Control(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()                       // restores __LeaveStreamsUnattached
	circ, err := st.BuildCircuit(ctx, nil) // tor chooses the relays
	if err != nil {
		log.Fatal(err)
	}
	err = st.SetAttacher(ctx, func(ctx context.Context, s torstate.Stream) (string, error) {
		log.Printf("stream %s to %s from %s: circuit %s", s.ID, s.Target, s.SourceAddr, circ.ID)
		return circ.ID, nil // or "" to let tor choose; an error closes the stream
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... streams made through tor's SocksPort now use circ.
}

// Follow circuits as they are built and closed.
func ExampleState_Subscribe() {
	ctx := context.Background()
	t, err := launch.Private(ctx, launch.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	st, err := torstate.New(ctx, t.Control(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	sub := st.Subscribe(0)
	defer sub.Close()
	for ch := range sub.Changes() {
		if c := ch.Circuit; c != nil {
			fmt.Println(c.String(), c.Purpose, c.Reason)
		}
	}
}
