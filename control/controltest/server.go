// Package controltest provides an in-process fake tor control port for
// tests, in the spirit of net/http/httptest.
//
// A [Server] listens on loopback TCP or a unix socket and runs a [Handler]
// for each connection. The usual handler is a [Transcript]: a script of
// what the client must send and what the server answers, kept in a text
// file (see [ParseTranscript] for the format) and ideally captured from a
// real tor with [Record]:
//
//	srv := controltest.NewTranscriptServer(t, "testdata/control/getinfo.txt")
//	c, err := control.Dial(ctx, srv.Network, srv.Addr)
//
// Handlers written in Go use [Conn] to read commands and write replies.
// The package does not import the control package, so the control
// package's own tests can use it too.
package controltest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Handler serves one control connection.
type Handler interface {
	ServeControl(c *Conn)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(c *Conn)

// ServeControl calls f(c).
func (f HandlerFunc) ServeControl(c *Conn) { f(c) }

// Server is a fake control port.
type Server struct {
	// Network and Addr are the arguments for control.Dial: "tcp" and
	// "127.0.0.1:PORT", or "unix" and a socket path.
	Network, Addr string

	handler Handler
	ln      net.Listener
	dir     string
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*Conn]struct{}
	closed  bool
}

// NewServer starts a server on a TCP port of 127.0.0.1. Close it when done.
func NewServer(h Handler) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("controltest: listen: %v", err))
	}
	return serve(ln, h, "")
}

// NewUnixServer starts a server on a unix socket in a new temporary
// directory. Close it when done.
func NewUnixServer(h Handler) *Server {
	dir, err := os.MkdirTemp("", "ct")
	if err != nil {
		panic(fmt.Sprintf("controltest: %v", err))
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		os.RemoveAll(dir)
		panic(fmt.Sprintf("controltest: listen: %v", err))
	}
	return serve(ln, h, dir)
}

func serve(ln net.Listener, h Handler, dir string) *Server {
	s := &Server{Network: ln.Addr().Network(), Addr: ln.Addr().String(), handler: h, ln: ln, dir: dir, conns: map[*Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := NewConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handler.ServeControl(c)
		}()
	}
}

// Close stops listening, closes every connection and waits for the
// handlers to return.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// CloseClients closes every open connection (as if tor died) but keeps
// listening.
func (s *Server) CloseClients() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Conn is the server side of one control connection.
type Conn struct {
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
}

// NewConn wraps the server side of a connection (for example one end of
// net.Pipe) so a handler can serve it without a Server.
func NewConn(nc net.Conn) *Conn {
	return &Conn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// ReadLine reads one line from the client, without its line ending
// (CRLF, or a bare LF, which tor also accepts). It returns io.EOF when the
// client has closed the connection.
func (c *Conn) ReadLine() (string, error) {
	line, err := c.br.ReadString('\n')
	if err != nil {
		if err == io.EOF && line != "" {
			return line, io.ErrUnexpectedEOF
		}
		return "", err
	}
	line = strings.TrimSuffix(line[:len(line)-1], "\r")
	return line, nil
}

// Command is one command read by ReadCommand.
type Command struct {
	// Line is the command line as sent, without CRLF.
	Line string
	// Keyword is the command keyword in upper case, without a leading '+'.
	Keyword string
	// Args is the rest of the line after the keyword and one space.
	Args string
	// Data is the decoded data block of a multi-line ("+") command: lines
	// joined by "\n", dot-stuffing removed.
	Data string
	// HasData reports whether the command had a data block.
	HasData bool
}

// ReadCommand reads one command, including the data block of a command
// that starts with '+'.
func (c *Conn) ReadCommand() (*Command, error) {
	line, err := c.ReadLine()
	if err != nil {
		return nil, err
	}
	cmd := &Command{Line: line}
	kw, args, _ := strings.Cut(line, " ")
	cmd.Args = args
	if strings.HasPrefix(kw, "+") {
		cmd.HasData = true
		kw = kw[1:]
		var lines []string
		for {
			l, err := c.ReadLine()
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			if l == "." {
				break
			}
			lines = append(lines, strings.TrimPrefix(l, "."))
		}
		cmd.Data = strings.Join(lines, "\n")
	}
	cmd.Keyword = strings.ToUpper(kw)
	return cmd, nil
}

// Write writes raw bytes to the client.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.nc.Write(p)
}

// Reply writes each line followed by CRLF, in one write. Lines are written
// as given: "250-version=0.4.9.11", "250 OK", "650 BW 0 0".
func (c *Conn) Reply(lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	_, err := c.Write([]byte(b.String()))
	return err
}

// DataBlock returns data as the lines of a dot-stuffed data block ending in
// ".", for use in Reply after a "250+key=" line. Like tor, it always ends
// the data with a line break.
func DataBlock(data string) []string {
	data = strings.TrimSuffix(data, "\n")
	var lines []string
	if data != "" {
		for _, l := range strings.Split(data, "\n") {
			if strings.HasPrefix(l, ".") {
				l = "." + l
			}
			lines = append(lines, l)
		}
	} else {
		lines = append(lines, "")
	}
	return append(lines, ".")
}

// ErrTranscript is matched by errors reporting a client that did not
// follow a transcript.
var ErrTranscript = errors.New("controltest: transcript mismatch")
