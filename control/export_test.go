package control

// WithClientNonce fixes the SAFECOOKIE client nonce, so that a session
// recorded from a real tor can be replayed byte for byte.
func WithClientNonce(n []byte) AuthOption {
	return func(a *authConfig) { a.clientNonce = n }
}

// ParseEvent parses ev without the once-per-event cache of Event.Parsed, for
// benchmarks that parse the same events again and again.
var ParseEvent = parseEvent
