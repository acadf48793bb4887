//go:build !unix

package control

import (
	"io"
	"net"
)

// rawWriter is only implemented on unix; elsewhere every command goes
// through the writer goroutine.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) write(b []byte) (int, error) { panic("unreachable") }

func (*rawWriter) writeAll(b []byte) error { panic("unreachable") }

// newRawReader returns nc: the replies are read with nc.Read.
func newRawReader(nc net.Conn) io.Reader { return nc }
