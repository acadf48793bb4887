// Package onion publishes Tor onion services as net.Listeners and dials
// through Tor.
//
// # Keys and addresses
//
// A v3 onion address is the base32 of the service's ed25519 public key, a
// checksum and a version byte (rend-spec-v3 §6). EncodeAddress and
// ParseAddress convert both ways and check the checksum, version and key;
// errors match ErrInvalidAddress. A service's identity Key is held the way
// tor holds it, as a 64-byte expanded ed25519 key. There are four ways to
// get one: a new random key (GenerateKey), a crypto/ed25519 private key
// (NewKey), the key ADD_ONION returned (ParseKeyBlob, written back by
// Key.Blob), or tor's own service directory (ReadServiceDir, written back
// by WriteServiceDir).
//
// # Services
//
// ListenConfig.Listen publishes an ephemeral service (ADD_ONION): it
// lives as long as the control connection, and has the same address next
// time only if the program keeps its Key. DirConfig.Listen publishes a
// service kept on disk (a HiddenServiceDir in tor's configuration): tor
// keeps the key in the directory, so the address survives restarts of tor
// and of the program. Both return a Listener, a net.Listener whose Addr is
// "<id>.onion:<port>", once the service's descriptors are uploaded (see
// Wait), and both remove the service on Close.
//
// # Under attack
//
// Services are published with tor's proof-of-work defense on where tor
// supports it (PoW; PoWAuto falls back with a logged notice, PoWOn fails
// with ErrPoWUnsupported). On-disk services can also limit introductions
// at their introduction points (IntroDoS), choose their number of
// introduction points, and learn each client's rendezvous circuit
// (ExportCircuitID: Accept returns *CircuitConn); Listener.CloseCircuit
// and CloseClient cut a client off. Package metrics reads the service's
// numbers from tor's MetricsPort.
//
// # Client authorization
//
// A service published with client authorization can be reached only by
// clients holding one of its authorized x25519 keys. GenerateClientKey
// makes a ClientKey; its public half goes to the service, its private
// half to the client's tor, each in the encoding tor wants there.
//
// # Dialing
//
// Dialer connects through a tor SOCKS port, to .onion and ordinary
// addresses alike. It is a golang.org/x/net/proxy ContextDialer whose
// errors tell why tor failed (see SOCKSError), resolves names through tor
// (Resolve, ResolvePTR), isolates streams by SOCKS credentials, and builds
// an *http.Client that never leaks DNS or honours proxy variables.
package onion
