package tortest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errNoConsensus means an authority has not written a consensus yet.
var errNoConsensus = errors.New("no consensus yet")

// consensus is the part of a network-status consensus document (either
// flavour) that tortest needs to decide whether a network is ready.
type consensus struct {
	ValidAfter time.Time
	FreshUntil time.Time
	ValidUntil time.Time
	Routers    []router
}

// router is one "r" entry of a consensus with its "s" flags.
type router struct {
	Nickname    string
	Fingerprint string // 40 upper-case hex digits of the RSA identity
	Address     string
	ORPort      int
	Flags       []string
}

// hasFlags reports whether r carries every flag in want.
func (r router) hasFlags(want []string) bool {
	for _, f := range want {
		if !slices.Contains(r.Flags, f) {
			return false
		}
	}
	return true
}

// parseConsensus reads the header times and the router entries of a
// consensus document as tor writes it to cached-consensus or
// cached-microdesc-consensus. Only the fields tortest uses are parsed; the
// signatures are not checked (the file comes from our own authority).
func parseConsensus(b []byte) (*consensus, error) {
	c := &consensus{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cur *router
	lineNo := 0
	sawVersion := false
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		kw, rest, _ := strings.Cut(line, " ")
		var err error
		switch kw {
		case "network-status-version":
			sawVersion = true
			if !strings.HasPrefix(rest, "3") {
				return nil, fmt.Errorf("consensus line %d: unsupported version %q", lineNo, rest)
			}
		case "vote-status":
			if rest != "consensus" {
				return nil, fmt.Errorf("consensus line %d: vote-status %q, want consensus", lineNo, rest)
			}
		case "valid-after":
			c.ValidAfter, err = parseDocTime(rest)
		case "fresh-until":
			c.FreshUntil, err = parseDocTime(rest)
		case "valid-until":
			c.ValidUntil, err = parseDocTime(rest)
		case "r":
			var r router
			r, err = parseRouterLine(rest)
			if err == nil {
				c.Routers = append(c.Routers, r)
				cur = &c.Routers[len(c.Routers)-1]
			}
		case "s":
			if cur == nil {
				return nil, fmt.Errorf("consensus line %d: \"s\" line before any \"r\" line", lineNo)
			}
			cur.Flags = strings.Fields(rest)
		case "directory-footer":
			cur = nil
		}
		if err != nil {
			return nil, fmt.Errorf("consensus line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	if !sawVersion {
		return nil, errors.New("consensus: no network-status-version line")
	}
	if c.ValidAfter.IsZero() || c.FreshUntil.IsZero() {
		return nil, errors.New("consensus: missing valid-after or fresh-until")
	}
	return c, nil
}

func parseDocTime(s string) (time.Time, error) {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	return t, nil
}

// parseRouterLine parses the arguments of an "r" line. The full flavour has
// one more field (the descriptor digest) than the microdesc flavour:
//
//	r nickname identity [digest] date time address ORPort DirPort
func parseRouterLine(s string) (router, error) {
	f := strings.Fields(s)
	if len(f) != 7 && len(f) != 8 {
		return router{}, fmt.Errorf("malformed r line %q", s)
	}
	id, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(f[1], "="))
	if err != nil || len(id) != 20 {
		return router{}, fmt.Errorf("malformed identity %q in r line", f[1])
	}
	n := len(f)
	port, err := strconv.Atoi(f[n-2])
	if err != nil || port < 0 || port > 65535 {
		return router{}, fmt.Errorf("malformed ORPort %q in r line", f[n-2])
	}
	return router{
		Nickname:    f[0],
		Fingerprint: strings.ToUpper(hex.EncodeToString(id)),
		Address:     f[n-3],
		ORPort:      port,
	}, nil
}

// missing lists, for a consensus and the nodes that must be in it, every
// node that is absent or lacks a flag it needs, as "nick: missing X, Y"
// strings. An empty result means the consensus is complete.
func (c *consensus) missing(nodes []*Node) []string {
	byFP := map[string]router{}
	for _, r := range c.Routers {
		byFP[r.Fingerprint] = r
	}
	var out []string
	for _, n := range nodes {
		r, ok := byFP[n.Fingerprint]
		if !ok {
			out = append(out, n.Nickname+": absent")
			continue
		}
		var lack []string
		for _, f := range n.requiredFlags() {
			if !slices.Contains(r.Flags, f) {
				lack = append(lack, f)
			}
		}
		if len(lack) > 0 {
			out = append(out, fmt.Sprintf("%s: lacks %s", n.Nickname, strings.Join(lack, " ")))
		}
	}
	return out
}
