package control

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Error is an error reply from tor: a status code of 4xx or 5xx and tor's
// text. Match the common codes with errors.Is against the sentinel errors
// below (ErrUnrecognizedEntity and so on), and get at the details with
// errors.As:
//
//	var cerr *control.Error
//	if errors.As(err, &cerr) { log.Print(cerr.Code, cerr.Text) }
//
// Tor's texts are meant for humans and may change between versions; match
// on the code.
type Error struct {
	// Command is the command keyword that failed, such as "GETINFO". The
	// arguments are deliberately not kept: they may hold secrets.
	Command string
	// Code is the status code of the reply's end line.
	Code int
	// Text is the text of the reply's end line.
	Text string
	// Lines are all lines of the reply, in order. A reply may carry several
	// errors (GETCONF with several unknown keys sends one 552 line each).
	Lines []Line
}

// Error renders the command, code and text, and the other error lines.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("control: ")
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%03d %s", e.Code, e.Text)
	for _, l := range e.Lines {
		if l.Sep != ' ' && l.Code >= 400 && l.Text != e.Text {
			fmt.Fprintf(&b, "; %03d %s", l.Code, l.Text)
		}
	}
	return b.String()
}

// Is reports whether target is the sentinel error for e's status code.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// Sentinel errors for tor's status codes (control-spec §4). A *Error with
// the matching Code satisfies errors.Is(err, sentinel).
var (
	ErrResourceExhausted            = errors.New("control: 451 resource exhausted")
	ErrProtocolSyntax               = errors.New("control: 500 syntax error: protocol")
	ErrUnrecognizedCommand          = errors.New("control: 510 unrecognized command")
	ErrUnimplementedCommand         = errors.New("control: 511 unimplemented command")
	ErrArgumentSyntax               = errors.New("control: 512 syntax error in command argument")
	ErrUnrecognizedArgument         = errors.New("control: 513 unrecognized command argument")
	ErrAuthenticationRequired       = errors.New("control: 514 authentication required")
	ErrBadAuthentication            = errors.New("control: 515 bad authentication")
	ErrUnspecifiedTorError          = errors.New("control: 550 unspecified tor error")
	ErrInternal                     = errors.New("control: 551 internal error")
	ErrUnrecognizedEntity           = errors.New("control: 552 unrecognized entity")
	ErrInvalidConfigValue           = errors.New("control: 553 invalid configuration value")
	ErrInvalidDescriptor            = errors.New("control: 554 invalid descriptor")
	ErrUnmanagedEntity              = errors.New("control: 555 unmanaged entity")
	sentinels                       = map[int]error{451: ErrResourceExhausted, 500: ErrProtocolSyntax, 510: ErrUnrecognizedCommand, 511: ErrUnimplementedCommand, 512: ErrArgumentSyntax, 513: ErrUnrecognizedArgument, 514: ErrAuthenticationRequired, 515: ErrBadAuthentication, 550: ErrUnspecifiedTorError, 551: ErrInternal, 552: ErrUnrecognizedEntity, 553: ErrInvalidConfigValue, 554: ErrInvalidDescriptor, 555: ErrUnmanagedEntity}
	_                         error = (*Error)(nil)
)

// replyError returns a *Error for a reply whose end line is not 2xx, or nil.
func replyError(cmd string, r *Reply) error {
	if r.OK() {
		return nil
	}
	return &Error{Command: cmd, Code: r.Code(), Text: r.Text(), Lines: r.Lines}
}

// ClosedError is returned by every call on a connection that has ended. It
// matches net.ErrClosed with errors.Is and unwraps to the cause (io.EOF when
// tor closed the connection, net.ErrClosed after Close, a protocol error,
// ...).
type ClosedError struct {
	Cause error
}

// Error says that the connection is closed, and why.
func (e *ClosedError) Error() string {
	if e.Cause == nil || e.Cause == net.ErrClosed {
		return "control: connection closed"
	}
	return "control: connection closed: " + e.Cause.Error()
}

// Is makes errors.Is(err, net.ErrClosed) true.
func (e *ClosedError) Is(target error) bool { return target == net.ErrClosed }

// Unwrap returns the cause.
func (e *ClosedError) Unwrap() error { return e.Cause }
