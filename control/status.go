package control

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Typed GETINFO documents: circuit-status, stream-status, orconn-status,
// entry-guards, ns/all and ns/id/..., onions/current and onions/detached
// (control-spec §3.9). The status lists have the shape of the matching
// events without the event name, and are parsed by the event parsers: a
// circuit-status line is parsed as the CIRC event with the same text, so a
// snapshot and the events that follow it give the same values. What tor
// writes in GETINFO is sometimes less than what it writes in events (tor
// 0.4.9's stream-status has no SOURCE_ADDR, PURPOSE or SOCKS fields, and
// orconn-status no ID).

// parseStatusLines parses a multi-line status value, one event per line.
func parseStatusLines[T any](key, typ, v string, parse func(*Event) (T, error)) ([]T, error) {
	var out []T
	for line := range strings.SplitSeq(v, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		ev := &Event{Type: typ, Lines: []Line{{Code: 250, Sep: ' ', Text: typ + " " + line}}}
		e, err := parse(ev)
		if err != nil {
			return out, fmt.Errorf("GETINFO %s: %w", key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ParseCircuitStatus parses the value of GETINFO circuit-status: one
// circuit per line, as in a CIRC event.
func ParseCircuitStatus(v string) ([]*CircEvent, error) {
	return parseStatusLines("circuit-status", "CIRC", v, parseCircEvent)
}

// ParseStreamStatus parses the value of GETINFO stream-status: one stream
// per line, as in a STREAM event.
func ParseStreamStatus(v string) ([]*StreamEvent, error) {
	return parseStatusLines("stream-status", "STREAM", v, parseStreamEvent)
}

// ParseORConnStatus parses the value of GETINFO orconn-status: one OR
// connection per line, as in an ORCONN event.
func ParseORConnStatus(v string) ([]*ORConnEvent, error) {
	return parseStatusLines("orconn-status", "ORCONN", v, parseORConnEvent)
}

// CircuitStatus returns tor's circuits (GETINFO circuit-status).
func (c *Conn) CircuitStatus(ctx context.Context) ([]*CircEvent, error) {
	v, err := c.GetInfoValue(ctx, "circuit-status")
	if err != nil {
		return nil, err
	}
	return ParseCircuitStatus(v)
}

// StreamStatus returns tor's streams (GETINFO stream-status).
func (c *Conn) StreamStatus(ctx context.Context) ([]*StreamEvent, error) {
	v, err := c.GetInfoValue(ctx, "stream-status")
	if err != nil {
		return nil, err
	}
	return ParseStreamStatus(v)
}

// ORConnStatus returns tor's connections to relays (GETINFO
// orconn-status).
func (c *Conn) ORConnStatus(ctx context.Context) ([]*ORConnEvent, error) {
	v, err := c.GetInfoValue(ctx, "orconn-status")
	if err != nil {
		return nil, err
	}
	return ParseORConnStatus(v)
}

// EntryGuard is one line of GETINFO entry-guards.
type EntryGuard struct {
	Relay Relay
	// Status is "up", "never-connected", "down", "unusable" or
	// "unlisted" (unknown values are passed through).
	Status string
	// Since is when the guard went down or became unlisted, when tor
	// says (zero otherwise).
	Since time.Time
}

// ParseEntryGuards parses the value of GETINFO entry-guards.
func ParseEntryGuards(v string) ([]EntryGuard, error) {
	var out []EntryGuard
	for line := range strings.SplitSeq(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			return out, fmt.Errorf("%w: GETINFO entry-guards line %q: want name and status", ErrProtocol, trimForError(line))
		}
		st, when, _ := strings.Cut(rest, " ")
		out = append(out, EntryGuard{Relay: parseRelay(name), Status: st, Since: parseTime(strings.TrimSpace(when))})
	}
	return out, nil
}

// EntryGuards returns tor's entry guards (GETINFO entry-guards).
func (c *Conn) EntryGuards(ctx context.Context) ([]EntryGuard, error) {
	v, err := c.GetInfoValue(ctx, "entry-guards")
	if err != nil {
		return nil, err
	}
	return ParseEntryGuards(v)
}

// RouterStatus is one router status entry of a network-status document
// (dir-spec §3.4.1): what GETINFO ns/all and ns/id/FP return, and what NS
// and NEWCONSENSUS events carry.
type RouterStatus struct {
	Nickname string
	// Fingerprint is the RSA identity, 40 upper-case hex digits.
	Fingerprint string
	// Digest is the descriptor digest in hex (microdescriptor consensuses
	// have none).
	Digest    string
	Published time.Time
	Address   string // IPv4 address
	ORPort    int
	DirPort   int
	// ORAddrs are the extra addresses of "a" lines ("[2001:db8::1]:9001").
	ORAddrs []string
	Flags   []string
	Version string // "Tor 0.4.9.11"
	// Protocols is the "pr" line ("Cons=1-2 Desc=1-2 ...").
	Protocols string
	// Bandwidth is the consensus weight (kilobytes/s, "w Bandwidth=").
	Bandwidth int64
	// Unmeasured is set when the weight is not from bandwidth authorities.
	Unmeasured bool
	// Policy is the exit policy summary ("accept 80,443" or "reject 1-65535").
	Policy string
	// MicrodescDigest is the "m" line's digest (microdescriptor flavour).
	MicrodescDigest string
}

// HasFlag reports whether the router has the consensus flag f ("Exit",
// "Guard", ...).
func (r *RouterStatus) HasFlag(f string) bool {
	for _, g := range r.Flags {
		if g == f {
			return true
		}
	}
	return false
}

// knownFlags interns the flags so that thousands of entries share them.
var knownFlags = map[string]string{}

func init() {
	for _, f := range []string{"Authority", "BadExit", "Exit", "Fast", "Guard", "HSDir", "MiddleOnly",
		"NoEdConsensus", "Running", "Stable", "StaleDesc", "Sybil", "V2Dir", "Valid"} {
		knownFlags[f] = f
	}
}

func parseFlags(s string) []string {
	fs := strings.Fields(s)
	for i, f := range fs {
		if k, ok := knownFlags[f]; ok {
			fs[i] = k
		} else {
			fs[i] = strings.Clone(f)
		}
	}
	return fs
}

// b64Hex decodes an unpadded base64 identity or digest to upper-case hex.
func b64Hex(s string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

// ParseRouterStatus parses router status entries ("r", "a", "s", "v",
// "pr", "w", "p", "m" lines) of either consensus flavour; other lines
// (a document's header and footer) are skipped.
func ParseRouterStatus(doc string) ([]*RouterStatus, error) {
	var out []*RouterStatus
	var cur *RouterStatus
	n := 0
	for len(doc) > 0 {
		n++
		line, rest, _ := strings.Cut(doc, "\n")
		doc = rest
		line = strings.TrimSuffix(line, "\r")
		kw, args, _ := strings.Cut(line, " ")
		if kw == "r" {
			r, err := parseRLine(args)
			if err != nil {
				return out, fmt.Errorf("%w: router status line %d %q: %v", ErrProtocol, n, trimForError(line), err)
			}
			out = append(out, r)
			cur = r
			continue
		}
		if cur == nil {
			continue
		}
		switch kw {
		case "a":
			cur.ORAddrs = append(cur.ORAddrs, strings.Clone(args))
		case "s":
			cur.Flags = parseFlags(args)
		case "v":
			cur.Version = strings.Clone(args)
		case "pr":
			cur.Protocols = strings.Clone(args)
		case "w":
			for f := range strings.FieldsSeq(args) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "Bandwidth":
					cur.Bandwidth, _ = strconv.ParseInt(v, 10, 64)
				case "Unmeasured":
					cur.Unmeasured = v == "1"
				}
			}
		case "p":
			cur.Policy = strings.Clone(args)
		case "m":
			cur.MicrodescDigest = strings.Clone(args)
		case "directory-footer":
			cur = nil
		}
	}
	return out, nil
}

// parseRLine parses "nick identity [digest] YYYY-MM-DD HH:MM:SS IP ORPort
// DirPort" (the microdesc flavour has no digest).
func parseRLine(args string) (*RouterStatus, error) {
	f := strings.Fields(args)
	if len(f) != 8 && len(f) != 7 {
		return nil, fmt.Errorf("want 7 or 8 fields, got %d", len(f))
	}
	r := &RouterStatus{Nickname: strings.Clone(f[0])}
	var err error
	if r.Fingerprint, err = b64Hex(f[1]); err != nil || len(r.Fingerprint) != 40 {
		return nil, fmt.Errorf("bad identity %q", f[1])
	}
	i := 2
	if len(f) == 8 {
		if r.Digest, err = b64Hex(f[2]); err != nil {
			return nil, fmt.Errorf("bad digest %q", f[2])
		}
		i = 3
	}
	r.Published, _ = time.ParseInLocation("2006-01-02 15:04:05", f[i]+" "+f[i+1], time.UTC)
	r.Address = strings.Clone(f[i+2])
	if r.ORPort, err = strconv.Atoi(f[i+3]); err != nil {
		return nil, fmt.Errorf("bad ORPort %q", f[i+3])
	}
	if r.DirPort, err = strconv.Atoi(f[i+4]); err != nil {
		return nil, fmt.Errorf("bad DirPort %q", f[i+4])
	}
	return r, nil
}

// Routers parses the router status entries of an NS or NEWCONSENSUS
// event, with the parser of GETINFO ns/all.
func (e *NSEvent) Routers() ([]*RouterStatus, error) { return ParseRouterStatus(e.Document) }

// NetworkStatus returns every router of tor's current consensus (GETINFO
// ns/all).
func (c *Conn) NetworkStatus(ctx context.Context) ([]*RouterStatus, error) {
	v, err := c.GetInfoValue(ctx, "ns/all")
	if err != nil {
		return nil, err
	}
	return ParseRouterStatus(v)
}

// RouterStatusByID returns the consensus entry of the relay with the
// given fingerprint (GETINFO ns/id/FP; a leading '$' is allowed). An
// unknown relay is an error matching ErrUnrecognizedEntity (tor's 552).
func (c *Conn) RouterStatusByID(ctx context.Context, fingerprint string) (*RouterStatus, error) {
	fp := strings.TrimPrefix(fingerprint, "$")
	if err := CheckToken("fingerprint", fp); err != nil {
		return nil, err
	}
	v, err := c.GetInfoValue(ctx, "ns/id/"+fp)
	if err != nil {
		return nil, err
	}
	rs, err := ParseRouterStatus(v)
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("%w: GETINFO ns/id/%s: %d router entries, want 1", ErrProtocol, fp, len(rs))
	}
	return rs[0], nil
}

// parseOnions parses the value of GETINFO onions/current or
// onions/detached: service IDs (addresses without ".onion"), one per line
// (tor sends one as a plain value and several as a data block); empty when
// there are none.
func parseOnions(v string) []string {
	return strings.Fields(v)
}

// Onions returns the service IDs of the ephemeral onion services of this
// control connection (onions/current) and of the detached ones
// (onions/detached), in one GETINFO.
func (c *Conn) Onions(ctx context.Context) (current, detached []string, err error) {
	v, err := c.GetInfo(ctx, "onions/current", "onions/detached")
	if err != nil {
		return nil, nil, err
	}
	return parseOnions(v[0]), parseOnions(v[1]), nil
}
