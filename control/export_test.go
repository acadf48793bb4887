package control

// WithClientNonce fixes the SAFECOOKIE client nonce, so that a session
// recorded from a real tor can be replayed byte for byte.
func WithClientNonce(n []byte) AuthOption {
	return func(a *authConfig) { a.clientNonce = n }
}
