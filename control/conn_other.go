//go:build !unix

package control

import "net"

// rawWriter is only implemented on unix; elsewhere every command goes
// through the writer goroutine.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) write(b []byte) (int, error) { panic("unreachable") }
