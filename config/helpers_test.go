package config_test

import (
	"bytes"
	"net"
	"strings"
	"sync"
)

type netDialer struct{}

func (netDialer) dial(socket string) (net.Conn, error) { return net.Dial("unix", socket) }

// recorded is a net.Conn that copies what the client writes into a buffer.
type recorded struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func recordConn(nc net.Conn, buf *bytes.Buffer, mu *sync.Mutex) net.Conn {
	return &recorded{Conn: nc, mu: mu, buf: buf}
}

func (r *recorded) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// commandLines splits what a client wrote into command lines.
func commandLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\r\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
