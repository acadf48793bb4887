//go:build unix

package control

import (
	"net"
	"syscall"
)

// rawWriter writes to a socket without blocking: it writes what the socket
// buffer takes and reports how much that was. It lets a caller write its
// own command (no hand-over to another goroutine) without ever blocking on
// a tor that does not read: the rest goes to the writer goroutine.
type rawWriter struct {
	rc  syscall.RawConn
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.do, made once (a method value allocates)
}

// newRawWriter returns a rawWriter for the unix and TCP sockets of package
// net, nil for any other net.Conn (whose Write may do more than write).
func newRawWriter(nc net.Conn) *rawWriter {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.UnixConn:
		sc = c
	case *net.TCPConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.do
	return w
}

func (w *rawWriter) do(fd uintptr) bool {
	for len(w.b) > 0 {
		n, err := syscall.Write(int(fd), w.b)
		if n > 0 {
			w.n += n
			w.b = w.b[n:]
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true // full: don't wait, the writer goroutine will
		case err != nil:
			w.err = err
			return true
		case n <= 0:
			return true
		}
	}
	return true
}

// write writes as much of b as the socket takes now. Only the holder of the
// connection's writing role calls it.
func (w *rawWriter) write(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	w.b = nil
	if err == nil {
		err = w.err
	}
	return w.n, err
}
