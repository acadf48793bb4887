//go:build unix

package control

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawWriter writes to a socket without blocking: it writes what the socket
// buffer takes and reports how much that was. It lets a caller write its
// own command (no hand-over to another goroutine) without ever blocking on
// a tor that does not read: the rest goes to the writer goroutine, which
// uses writeAll.
type rawWriter struct {
	rc   syscall.RawConn
	b    []byte
	n    int
	err  error
	wait bool                  // on a full socket, wait for room (writeAll) rather than return (write)
	fn   func(fd uintptr) bool // w.do, made once (a method value allocates)
}

// newRawWriter returns a rawWriter for the unix and TCP sockets of package
// net, nil for any other net.Conn (whose Write may do more than write).
func newRawWriter(nc net.Conn) *rawWriter {
	rc := rawConnOf(nc)
	if rc == nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.do
	return w
}

// rawConnOf returns the syscall.RawConn of the unix and TCP sockets of
// package net, nil for any other net.Conn.
func rawConnOf(nc net.Conn) syscall.RawConn {
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
	return rc
}

func (w *rawWriter) do(fd uintptr) bool {
	for len(w.b) > 0 {
		n, err := sysWrite(fd, w.b)
		if n > 0 {
			w.n += n
			w.b = w.b[n:]
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			// Full: writeAll waits (false: the poller parks the
			// goroutine until the socket is writable); write returns,
			// and the writer goroutine sends the rest.
			return !w.wait
		case err != nil:
			w.err = err
			return true
		case n <= 0:
			return true
		}
	}
	return true
}

// run writes b with do, waiting for room or not.
func (w *rawWriter) run(b []byte, wait bool) (int, error) {
	w.b, w.n, w.err, w.wait = b, 0, nil, wait
	err := w.rc.Write(w.fn)
	w.b = nil
	if err == nil {
		err = w.err
	}
	return w.n, err
}

// write writes as much of b as the socket takes now. Only the holder of the
// connection's writing role calls it.
func (w *rawWriter) write(b []byte) (int, error) { return w.run(b, false) }

// writeAll writes all of b, waiting while the socket is full, as
// net.Conn.Write does but with sysWrite. Only the holder of the
// connection's writing role (the writer goroutine) calls it.
func (w *rawWriter) writeAll(b []byte) error {
	n, err := w.run(b, true)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// rawReader reads a socket of package net with sysRead, waiting in the
// runtime's poller (as net.Conn.Read does) while there is nothing to read.
// Read deadlines apply as to net.Conn.Read.
type rawReader struct {
	rc  syscall.RawConn
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // r.do, made once
}

// newRawReader returns a rawReader for the unix and TCP sockets of package
// net and nc itself for any other net.Conn.
func newRawReader(nc net.Conn) io.Reader {
	rc := rawConnOf(nc)
	if rc == nil {
		return nc
	}
	r := &rawReader{rc: rc}
	r.fn = r.do
	return r
}

func (r *rawReader) do(fd uintptr) bool {
	for {
		n, err := sysRead(fd, r.b)
		switch {
		case err == nil:
			r.n = n
			if n == 0 {
				r.err = io.EOF
			}
			return true
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // wait until readable
		default:
			r.err = os.NewSyscallError("read", err)
			return true
		}
	}
}

// Read reads into p; only the holder of the connection's read role calls
// it (through the replyReader's bufio.Reader).
func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.b, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.fn)
	r.b = nil
	if err == nil {
		err = r.err
	}
	return r.n, err
}
