// Package torstate keeps tor's relays, circuits and streams as live Go
// values, builds circuits through chosen relays, and decides which circuit
// each new stream uses (txtorcon's TorState, build_circuit and stream
// attachers, for Go).
//
//	st, err := torstate.New(ctx, conn, nil) // conn: an authenticated *control.Conn
//	if err != nil { ... }
//	defer st.Close()
//	circ, err := st.BuildCircuit(ctx, []string{guardFP, middleFP, exitFP})
//	if err != nil { ... } // a *CircuitError carries tor's REASON
//	d, err := st.Dialer(ctx, circ.ID) // a SOCKS dialer whose streams use circ
//	resp, err := d.HTTPClient().Get("http://example.com/")
//
// # Staying in sync
//
// New subscribes to CIRC, CIRC_MINOR, STREAM, ORCONN, GUARD, NEWCONSENSUS
// and NS events first, then reads circuit-status, stream-status,
// orconn-status, entry-guards and ns/all with GETINFO, then applies the
// events that arrived meanwhile. Tor queues events and may send one that
// happened before a GETINFO after its reply; applying every event in order
// on top of the snapshot still ends in tor's state, because each event
// carries the whole state of its circuit or stream. One goroutine applies
// events, so the State never delays the control connection's reader; its
// event buffer is large, and should it overflow anyway the State reads the
// snapshot again and sends a Change with Resynced set.
//
// # Changes: channels, not callbacks
//
// Subscribe returns a Subscription whose channel receives a Change per
// circuit, stream, consensus or guard change, like control.Subscribe does
// for raw events. A channel lets the consumer select on it together with
// its context and other work, and keeps the consumer's code off the
// State's goroutine: a callback that blocks or is slow would hold up every
// later event (and the BuildCircuit calls waiting for them). A consumer
// that falls behind loses changes, counted by Dropped, and can re-read the
// state with Circuits and Streams at any time.
//
// # Attaching streams
//
// SetAttacher installs a function that chooses the circuit of every new
// stream (tor's __LeaveStreamsUnattached and ATTACHSTREAM). It runs on its
// own goroutine per stream, bounded by Options.AttachTimeout. A stream
// never stays unattached: when the attacher fails, panics or times out
// the stream is closed, so the client's request fails at once (see
// Attacher for why it is closed rather than given back to tor). Streams
// to .onion addresses, which tor 0.4.9 also leaves for the controller, and
// tor's own directory streams never reach the attacher: they are handed
// back to tor, which alone can attach them. Close restores
// __LeaveStreamsUnattached and gives tor any stream still waiting.
//
// Dialer returns a SOCKS dialer (an *onion.Dialer) pinned to one circuit:
// its fresh isolation credentials identify its streams, which are attached
// to that circuit and nowhere else.
//
// # What tor reports
//
// Relays are the entries of tor's current consensus (microdescriptor
// flavour on a client: fingerprint, nickname, address, ports, flags,
// bandwidth, and an exit-policy summary only in the full flavour), with the
// country of each address when tor has GeoIP data (GETINFO
// ip-to-country); without it, or for private addresses, Country is "".
// Tor sends a stream's source address and purpose only in its NEW event,
// so streams read from the snapshot have neither.
package torstate
