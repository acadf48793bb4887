// Package launch gives a Go program a working, controlled tor with one
// call, in one of three ways, all returning a [*Tor] with an authenticated
// control connection:
//
//   - [Private] starts a new tor on every call (package process: our own
//     torrc, a temporary directory, tor owned by this program so it never
//     outlives it). Close stops it and removes its files.
//   - [Global] shares one tor per Go program, started on first use and
//     reference counted: the last Close stops it. A later call whose options
//     conflict with the running tor's gets an error matching
//     [ErrGlobalConflict].
//   - [System] attaches to a tor that is already running (the endpoints
//     given, or /run/tor/control, /var/run/tor/control, 127.0.0.1:9051 and
//     127.0.0.1:9151), authenticating with what PROTOCOLINFO offers. We never
//     stop a tor we did not start.
//
// # Bootstrap
//
// A launched tor starts with DisableNetwork 1 and answers on its control
// connection within tens of milliseconds. Unless [Options.NoNetwork] is set,
// launch then subscribes to STATUS_CLIENT, reads GETINFO
// status/bootstrap-phase (so an event between the two cannot be lost),
// enables the network and waits for PROGRESS=100, reporting each step to
// [Options.Progress] and BOOTSTRAP problems that tor recommends to show
// (RECOMMENDATION=warn) to [Options.Warning]. The context's deadline,
// [Options.BootstrapTimeout] and the stall detector ([Options.StallTimeout]:
// no new step for two minutes, unless set) stop the
// wait, so that a start on a blocked or offline machine never hangs; the
// error is a
// [*BootstrapError] with the last progress reached and tor's last warn/err
// lines, and a private tor is killed and its files removed. With NoNetwork,
// [Tor.EnableNetwork] does the same later.
//
// # Configuration
//
// The torrc of a launched tor is one [config.Torrc] that merges launch's
// own settings (DisableNetwork 1), [Options.Torrc] and [Options.Network]
// (the client options of a private test network, see package tortest);
// a key set differently by two of them is an error matching
// config.ErrConflict, never a silent override. Package process adds its
// defaults (control socket, cookie authentication, SocksPort auto, ...)
// for the keys none of them set.
package launch
