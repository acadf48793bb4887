// Package process runs one tor binary for a Go program and makes sure it
// never outlives that program.
//
// [Start] writes a torrc of its own (tor never reads /etc/tor/torrc or the
// system torrc-defaults), starts tor in a private temporary directory and
// returns once tor answers on its owning control connection:
//
//	p, err := process.Start(ctx, process.Options{
//		Torrc: new(config.Torrc).Add("DisableNetwork", "1"),
//	})
//	if err != nil { ... }
//	defer p.Close()
//	conn := p.Control() // a *control.Conn, authenticated; tor exits when it is closed
//
// # Ownership
//
// Where the platform has unix socket pairs, tor gets one end of a socket
// pair as __OwningControllerFD: the connection is authenticated from the
// start, and tor exits within milliseconds of its closing, which the kernel
// does when the Go program dies for any reason, SIGKILL included. Elsewhere
// (Windows, or a [Creator] that cannot pass descriptors) Start connects to
// tor's control port with the authentication cookie and sends
// TAKEOWNERSHIP, which gives the same guarantee. __OwningControllerProcess
// with the Go program's pid is always set as a backstop (tor polls it every
// 15 s).
//
// # Files
//
// Every Process has a private directory (mode 0700) under [os.TempDir]
// named "gotorcon-tor-*" that holds the torrc, an empty defaults file, the
// unix control socket, a lock file and, unless [Options.DataDir] names one,
// tor's DataDirectory. [Process.Close] removes it. A Go program that died
// cannot remove its directory, so Start removes the directories of dead
// programs (those whose lock file nobody holds) the first time it runs.
//
// # Finding tor
//
// [Find] looks at the explicit path, then the environment variable
// GOTORCON_TOR, then PATH, then the usual install locations. Versions older
// than [MinVersion] are refused with an error matching [ErrTooOld].
//
// # Statically linked tor
//
// A [Creator] replaces the default exec of a binary, for example with a tor
// linked into the program; package bineadapter adapts the Creator of
// github.com/cretz/bine/process (which go-libtor implements).
package process
