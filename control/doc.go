// Package control is a client for Tor's control protocol (control-spec v1,
// tested against tor 0.4.9).
//
// Connect and authenticate:
//
//	c, err := control.Dial(ctx, "unix", "/run/tor/control")
//	if err != nil { ... }
//	defer c.Close()
//	if err := c.Authenticate(ctx); err != nil { ... } // SAFECOOKIE, password or NULL
//	v, err := c.GetInfoValue(ctx, "version")
//
// # Concurrency
//
// A [Conn] may be used from any number of goroutines. Commands are
// pipelined: each is written without waiting for the replies to earlier
// ones, commands queued while a write is in progress go out together in the
// next write, and replies are matched to commands in order. One goroutine
// reads replies and routes asynchronous events (650 replies, which tor may
// send between a command and its reply) to subscriptions.
//
// A goroutine whose command goes out while nothing else is in flight writes
// it itself, without blocking (what the socket does not take at once is
// handed to the writer goroutine); otherwise its command joins the writer
// goroutine's next write. Either way a caller never waits for tor to read.
//
// Such a goroutine also reads its own reply when nobody else needs the
// socket read (no other command in flight, no subscription): tor's answer
// then wakes it directly, as in a hand-written client, instead of waking
// the reader goroutine, which would have to wake it in turn. Reading is a
// role held by one goroutine at a time: the reader goroutine leaves it idle
// after delivering the reply of a command that was alone in flight from its
// write to its reply (the sequential case; with concurrent callers it keeps
// reading), a caller that finds it idle takes it for its own reply, and it
// goes back to the reader goroutine as soon as another command, a
// subscription or a context that ends needs it, or after 2 ms unused (so
// that tor closing an idle connection is still noticed). A caller parses a reply only once all of it
// is in the read buffer, so it never stops in the middle of one.
//
// Every blocking method takes a context. When the context ends the method
// returns at once; the command's reply is still read and dropped, so the
// stream stays in sync. A cancelled ADD_ONION whose reply creates a service
// is undone with DEL_ONION. When the connection ends (Close, tor exiting,
// an I/O or protocol error) every pending and later call fails with an
// error matching net.ErrClosed that wraps the cause; [Conn.Done] is closed
// and [Conn.Err] reports the cause.
//
// # Arguments
//
// No value passed to a method can start a second command. Values that tor
// accepts quoted (SETCONF and RESETCONF values) are sent as C-escaped quoted
// strings, so a newline in a value is data of that option. Arguments tor
// takes unquoted (GETINFO keys, ADD_ONION targets, event and signal names,
// addresses, ...) are checked with [CheckToken]: CR, LF, NUL, spaces and
// quotes are refused with an error matching [ErrInvalidArgument] before
// anything is written. Passwords and cookies are sent hex-encoded.
//
// Every command is measured before anything of it is written: tor 0.4.9
// reads a command into a 1 MiB buffer and answers a longer one with "500
// Line too long." and a closed connection (a tor owned by the connection
// then exits). A command line may have [MaxCommandLength] bytes; a
// multi-line command (+LOADCONF, +HSPOST, +POSTDESCRIPTOR) counts as a
// whole, data block included. A longer command fails with a
// *[CommandTooLongError] and the connection stays usable.
//
// # Line endings
//
// Commands are always written with CRLF line endings. The lines of a data
// block (LOADCONF's torrc, a descriptor) may end in LF or CRLF; both are
// sent as CRLF, dot-stuffed. A CR or LF can never end up inside a command
// line: raw command lines and unquoted arguments containing one are
// refused, and SETCONF values carry them as C escapes.
//
// Replies are read the other way round: a line ends at LF, and a CR just
// before it is removed. Tor always sends CRLF; a bare LF, which only fakes
// and broken proxies send, is accepted as a line ending rather than
// refused. A lone CR inside a line is data and is kept. Data blocks are
// returned with their lines joined by "\n" and without the final line
// break (tor always sends one, so "abc" and "abc\n" read the same).
//
// # Replies
//
// Replies are parsed in every form of control-spec §2.3: mid lines ("250-"),
// data lines ("250+") followed by a dot-stuffed data block, several data
// blocks in one reply, mixed status codes, and 8-bit data. A reply is held
// in memory up to [DefaultMaxReplySize] (see [WithMaxReplySize]); reading
// one costs about its size (big replies are read in chunks, joined once
// and handed to the caller without a further copy). Error
// replies are returned as *[Error], which matches sentinels such as
// [ErrUnrecognizedEntity] (552) with errors.Is. Values tor writes as C
// strings (octal escapes for UTF-8 and control bytes) are decoded to their
// bytes.
//
// # Events
//
// [Conn.Subscribe] returns a [Subscription] with its own buffered channel.
// The connection keeps tor's SETEVENTS mask equal to the union of the live
// subscriptions. A subscriber that falls behind loses events (counted by
// [Subscription.Dropped]) but never delays replies or other subscribers.
// Every subscriber that wants an event receives the same *[Event];
// [Event.Parsed] decodes it once, for all of them, into the typed form of
// its type (*[CircEvent] for CIRC, *[StatusEvent] for STATUS_CLIENT, ...:
// the list is in its doc): the one way to decode an event. Unknown events,
// keywords and values are passed through, never dropped.
//
// Events are cheap to receive because they share memory: the reader
// allocates Events a few dozen at a time, copies their text into 4 KiB
// blocks and, once a subscriber has called Parsed, allocates the typed
// forms of common events 16 at a time for the parser to fill in. Keeping
// an *Event, its parsed form or a string of either keeps such a block in
// memory; clone (strings.Clone) what you keep for long if memory matters.
//
// The package controltest provides an in-process fake control port for
// tests, driven by transcripts of real sessions.
package control
