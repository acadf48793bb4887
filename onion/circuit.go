package onion

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/gotorcon/tor/control"
)

// ErrProxyHeader is matched when a connection of a service with
// ExportCircuitID does not start with the PROXY header tor sends.
var ErrProxyHeader = errors.New("onion: bad PROXY protocol header")

// maxProxyHeader is the longest PROXY protocol v1 line (107 bytes with
// CRLF, haproxy's proxy-protocol.txt §2.1).
const maxProxyHeader = 107

// CircuitConn is a connection accepted by the Listener of a service with
// DirConfig.ExportCircuitID. Tor starts the stream with a PROXY protocol
// v1 header that names the client's rendezvous circuit; CircuitConn reads
// it on the first Read (or CircuitID call) and strips it, so the
// application sees only the client's bytes.
//
// The circuit is tor's "global identifier" of the service's rendezvous
// circuit with that client: the ID of CIRC events and CLOSECIRCUIT. All
// streams a client opens on one circuit share it; a client that wants to
// be seen as someone else builds a new circuit, so treat the ID as "this
// connection's client for now", not as an identity.
type CircuitConn struct {
	// Conn is the local connection from tor. Its reads include the PROXY
	// header: read through CircuitConn.
	net.Conn

	once sync.Once
	br   *bufio.Reader
	hdr  ProxyHeader
	err  error
}

// ProxyHeader is what tor's PROXY header says about a connection.
type ProxyHeader struct {
	// CircuitID is the rendezvous circuit's ID, as in CIRC events.
	CircuitID string
	// VirtPort is the virtual port the client connected to.
	VirtPort int
}

func newCircuitConn(c net.Conn) *CircuitConn {
	return &CircuitConn{Conn: c, br: bufio.NewReaderSize(c, 256)}
}

// readHeader reads and parses the header once; it honours the read
// deadline set on the connection.
func (c *CircuitConn) readHeader() error {
	c.once.Do(func() {
		var line []byte
		for len(line) < maxProxyHeader {
			b, err := c.br.ReadByte()
			if err != nil {
				c.err = fmt.Errorf("onion: reading the PROXY header: %w", err)
				return
			}
			line = append(line, b)
			if b == '\n' {
				break
			}
		}
		c.hdr, c.err = ParseProxyHeader(string(line))
	})
	return c.err
}

// Header returns the parsed PROXY header, reading it first if needed
// (it blocks until tor has sent it, which tor does at once, or until the
// read deadline).
func (c *CircuitConn) Header() (ProxyHeader, error) {
	err := c.readHeader()
	return c.hdr, err
}

// CircuitID returns the ID of the client's rendezvous circuit (see
// Header).
func (c *CircuitConn) CircuitID() (string, error) {
	h, err := c.Header()
	return h.CircuitID, err
}

// Read reads the client's data, after the PROXY header.
func (c *CircuitConn) Read(p []byte) (int, error) {
	if err := c.readHeader(); err != nil {
		return 0, err
	}
	return c.br.Read(p)
}

// CloseWrite shuts down the writing side of the connection (tor then
// ends the stream's sending half), when the local socket supports it.
func (c *CircuitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ParseProxyHeader parses the PROXY protocol v1 line that tor writes for
// HiddenServiceExportCircuitID haproxy, including its CRLF. Tor 0.4.9
// writes
//
//	PROXY TCP6 fc00:dead:beef:4dad::HHHH:LLLL ::1 SRCPORT VIRTPORT\r\n
//
// where HHHH:LLLL are the high and low 16 bits (hex) of the circuit's
// global identifier and SRCPORT is its low 16 bits (decimal). Older tors
// wrote the address without "::" (fc00:dead:beef:4dad:HHHH:LLLL), which is
// accepted too. Anything else is refused with ErrProxyHeader.
func ParseProxyHeader(line string) (ProxyHeader, error) {
	bad := func(why string) (ProxyHeader, error) {
		return ProxyHeader{}, fmt.Errorf("%w: %s in %q", ErrProxyHeader, why, line)
	}
	rest, ok := strings.CutSuffix(line, "\r\n")
	if !ok {
		return bad("no CRLF")
	}
	f := strings.Split(rest, " ")
	if len(f) != 6 || f[0] != "PROXY" || f[1] != "TCP6" || f[3] != "::1" {
		return bad("not tor's PROXY TCP6 line")
	}
	const prefix = "fc00:dead:beef:4dad:"
	groups, ok := strings.CutPrefix(f[2], prefix)
	if !ok {
		return bad("source address outside fc00:dead:beef:4dad::/64")
	}
	groups = strings.TrimPrefix(groups, ":")
	hiS, loS, ok := strings.Cut(groups, ":")
	if !ok {
		return bad("source address without the circuit ID")
	}
	hi, err1 := strconv.ParseUint(hiS, 16, 16)
	lo, err2 := strconv.ParseUint(loS, 16, 16)
	sport, err3 := strconv.ParseUint(f[4], 10, 16)
	vport, err4 := strconv.ParseUint(f[5], 10, 16)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return bad("bad number")
	}
	id := hi<<16 | lo
	if id == 0 {
		return bad("circuit ID 0")
	}
	if sport != lo {
		return bad("source port does not match the circuit ID")
	}
	return ProxyHeader{CircuitID: strconv.FormatUint(id, 10), VirtPort: int(vport)}, nil
}

// CloseCircuit closes a circuit of the tor that runs the service
// (CLOSECIRCUIT), such as the rendezvous circuit of a client given by
// CircuitConn.CircuitID: every stream of that client on it ends. The
// client can come back on a new circuit.
func (l *Listener) CloseCircuit(ctx context.Context, circuitID string) error {
	if err := l.conn.CloseCircuit(ctx, circuitID, false); err != nil {
		return fmt.Errorf("onion: close circuit %s: %w", circuitID, err)
	}
	return nil
}

// CloseClient closes the rendezvous circuit that c came on, cutting off
// every connection of that client on it. c must be a *CircuitConn
// accepted from a service with ExportCircuitID.
func (l *Listener) CloseClient(ctx context.Context, c net.Conn) error {
	cc, ok := c.(*CircuitConn)
	if !ok {
		return errors.New("onion: CloseClient needs a connection of a service with ExportCircuitID (tor 0.4.9 tells ephemeral services nothing about their clients' circuits)")
	}
	id, err := cc.CircuitID()
	if err != nil {
		return err
	}
	return l.CloseCircuit(ctx, id)
}

// RendezvousCircuits returns the IDs of the service's open rendezvous
// circuits (GETINFO circuit-status, purpose HS_SERVICE_REND): one per
// client circuit that reached the service. It works for ephemeral
// services too, which is the most tor 0.4.9 tells them about their
// clients: it does not say which circuit an accepted connection came on
// (only ExportCircuitID, for on-disk services, does). Closing all of them
// with CloseCircuit cuts every current client off.
func (l *Listener) RendezvousCircuits(ctx context.Context) ([]string, error) {
	v, err := l.conn.GetInfoValue(ctx, "circuit-status")
	if err != nil {
		return nil, fmt.Errorf("onion: GETINFO circuit-status: %w", err)
	}
	var ids []string
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		args, err := control.ParseArgs(line)
		if err != nil {
			return ids, fmt.Errorf("onion: circuit-status line %q: %w", line, err)
		}
		pos := args.Positional()
		if len(pos) < 2 {
			return ids, fmt.Errorf("onion: short circuit-status line %q", line)
		}
		m := args.Map()
		if m["PURPOSE"] == "HS_SERVICE_REND" && m["REND_QUERY"] == l.id && pos[1] == "BUILT" {
			ids = append(ids, pos[0])
		}
	}
	return ids, nil
}
