package control

// WithClientNonce fixes the SAFECOOKIE client nonce, so that a session
// recorded from a real tor can be replayed byte for byte.
func WithClientNonce(n []byte) AuthOption {
	return func(a *authConfig) { a.clientNonce = n }
}

// ParseEvent parses ev without the once-per-event cache of Event.Parsed, for
// benchmarks that parse the same events again and again: into new memory
// each time, not the event's slot. Not safe for concurrent use on one
// event.
func ParseEvent(ev *Event) (any, error) {
	ev.slot = nil
	return parseEvent(ev)
}
