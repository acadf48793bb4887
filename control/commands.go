package control

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// isCode reports whether err is a *Error with the given status code.
func isCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// tokens appends " tok" for each token after checking it.
func appendTokens(b *strings.Builder, what string, toks []string) error {
	for _, t := range toks {
		if err := CheckToken(what, t); err != nil {
			return err
		}
		b.WriteByte(' ')
		b.WriteString(t)
	}
	return nil
}

// GetInfo asks tor for the values of the given keys (control-spec §3.9,
// keys are case-sensitive: "version", "config-file", "net/listeners/socks",
// ...) and returns them in the order of keys, as tor answers them; for one
// key, [Conn.GetInfoValue] returns the string itself. Multi-line values
// arrive as data blocks and are returned with their lines joined by "\n".
// If any key is unknown tor answers none of them and the error matches
// ErrUnrecognizedEntity. Keys must be tokens (see [CheckToken]); anything
// else is refused before it is written.
//
// The values are a slice rather than a map because a map costs more than
// the rest of the round trip (two allocations, 336 bytes for one key).
func (c *Conn) GetInfo(ctx context.Context, keys ...string) ([]string, error) {
	vals := make([]string, len(keys))
	if err := c.getInfoInto(ctx, keys, vals); err != nil {
		return nil, err
	}
	return vals, nil
}

// GetInfoValue returns the value of one GETINFO key: GetInfo for one key.
func (c *Conn) GetInfoValue(ctx context.Context, key string) (string, error) {
	var v [1]string
	if err := c.getInfoInto(ctx, []string{key}, v[:]); err != nil {
		return "", err
	}
	return v[0], nil
}

// getInfoInto asks tor for keys and sets vals[i] to the value of keys[i].
// tor answers the keys in the order asked, each echoed as written.
func (c *Conn) getInfoInto(ctx context.Context, keys, vals []string) error {
	r, err := c.getInfo(ctx, keys)
	if err != nil {
		return err
	}
	defer putRequest(r)
	i := 0
	for _, l := range r.reply.Lines {
		k, v, ok := strings.Cut(l.Text, "=")
		if !ok {
			if l.Sep == ' ' {
				continue // "250 OK"
			}
			return fmt.Errorf("%w: GETINFO reply line without '=': %q", ErrProtocol, trimForError(l.Text))
		}
		if i >= len(keys) || k != keys[i] {
			return fmt.Errorf("%w: GETINFO reply has %q where %s was expected", ErrProtocol, trimForError(k), expectedKey(keys, i))
		}
		if l.HasData() {
			v = l.Data
		}
		// A small reply is a view of a reused buffer: keep a copy. A big
		// one is the reply's own memory, kept without a copy.
		if !r.ownsReply {
			v = strings.Clone(v)
		}
		vals[i] = v
		i++
	}
	if i < len(keys) {
		return fmt.Errorf("%w: GETINFO reply has no value for %q", ErrProtocol, keys[i])
	}
	return nil
}

func expectedKey(keys []string, i int) string {
	if i >= len(keys) {
		return "no more keys"
	}
	return fmt.Sprintf("%q", keys[i])
}

// getInfo sends GETINFO with a pooled request and waits for the reply; on
// success the caller reads r.reply (a view of r's buffer) and puts r back.
func (c *Conn) getInfo(ctx context.Context, keys []string) (*request, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: GETINFO needs at least one key", ErrInvalidArgument)
	}
	for _, k := range keys {
		if err := CheckToken("GETINFO key", k); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := getRequest("GETINFO")
	r.wire = append(r.wire[:0], "GETINFO"...)
	for _, k := range keys {
		r.wire = append(r.wire, ' ')
		r.wire = append(r.wire, k...)
	}
	r.wire = append(r.wire, '\r', '\n')
	reading, err := c.submitReading(r, true)
	if err != nil {
		putRequest(r)
		return nil, err
	}
	if reading {
		_, err = c.readOwn(ctx, r)
	} else {
		_, err = r.wait(ctx)
	}
	if err != nil {
		if r.state.Load() == stReplied {
			putRequest(r) // answered with an error: nothing refers to r
		}
		return nil, err
	}
	return r, nil
}

// ConfEntry is one configuration option line of GETCONF, SETCONF,
// RESETCONF or a CONF_CHANGED event.
type ConfEntry struct {
	// Key is the option name. In replies it has tor's canonical spelling.
	Key string
	// Value is the option value, decoded to its bytes.
	Value string
	// Unset means the line carried no value. In GETCONF replies and
	// CONF_CHANGED events the option is unset (or at a default that means
	// "unset"); it is different from an empty value. In SETCONF the bare
	// key sets the option to 0/empty; in RESETCONF it resets the option to
	// its default.
	Unset bool
}

func parseConfLine(text string) (ConfEntry, error) {
	k, v, ok := strings.Cut(text, "=")
	if !ok {
		return ConfEntry{Key: text, Unset: true}, nil
	}
	dv, err := decodeValue(v)
	if err != nil {
		return ConfEntry{Key: k}, fmt.Errorf("%w: value of %s: %w", ErrProtocol, k, err)
	}
	return ConfEntry{Key: k, Value: dv}, nil
}

// GetConf returns the values of the given options (control-spec §3.3), in
// order: one entry per value, so a multi-valued option (Log,
// HiddenServicePort, ...) gives several entries, and an unset option gives
// one entry with Unset set. Option names are case-insensitive.
//
// Entries carry tor's canonical spelling, not the caller's: tor answers
// "GETCONF socksport" with "SocksPort=...". They are not re-keyed to the
// names asked for because answers do not map one-to-one to them: a
// multi-valued option answers several lines, the virtual
// HiddenServiceOptions answers HiddenServiceDir, HiddenServicePort, ...
// lines, and CONF_CHANGED events and SETCONF use the canonical names too.
// Compare names with strings.EqualFold. Quoted values are decoded to their bytes.
// An unknown option fails the whole request with ErrUnrecognizedEntity.
// (Tor may print an empty list option as "Key=", an empty value rather than
// Unset: tor bug #18263.)
func (c *Conn) GetConf(ctx context.Context, keys ...string) ([]ConfEntry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("GETCONF")
	for _, k := range keys {
		if err := checkKeyword("GETCONF key", k); err != nil {
			return nil, err
		}
		b.WriteByte(' ')
		b.WriteString(k)
	}
	reply, err := c.roundTrip(ctx, newRequest("GETCONF", b.String(), nil))
	if err != nil {
		return nil, err
	}
	entries := make([]ConfEntry, 0, len(reply.Lines))
	for _, l := range reply.Lines {
		e, err := parseConfLine(l.Text)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func confLine(cmd string, entries []ConfEntry) (string, error) {
	if len(entries) == 0 {
		return "", fmt.Errorf("%w: %s needs at least one option", ErrInvalidArgument, cmd)
	}
	var b strings.Builder
	b.WriteString(cmd)
	for _, e := range entries {
		if err := checkKeyword(cmd+" key", e.Key); err != nil {
			return "", err
		}
		b.WriteByte(' ')
		b.WriteString(e.Key)
		if !e.Unset {
			if err := checkValue("value of "+e.Key, e.Value); err != nil {
				return "", err
			}
			b.WriteByte('=')
			b.WriteString(QuoteCString(e.Value))
		}
	}
	return b.String(), nil
}

// SetConf sets options in one atomic change (control-spec §3.1): either all
// entries apply or none do. Repeat a key for a multi-valued option (setting
// any value of it replaces all of them); set options that depend on each
// other in one call. Values are sent as quoted C strings, so any bytes but
// NUL, including CR, LF, quotes and backslashes, reach tor as literal data
// of that one option. An entry with Unset sends the bare key.
func (c *Conn) SetConf(ctx context.Context, entries ...ConfEntry) error {
	line, err := confLine("SETCONF", entries)
	if err != nil {
		return err
	}
	return c.requestOK(ctx, line)
}

// ResetConf is like SetConf, but a bare key (Unset) returns the option to
// its default (control-spec §3.2).
func (c *Conn) ResetConf(ctx context.Context, entries ...ConfEntry) error {
	line, err := confLine("RESETCONF", entries)
	if err != nil {
		return err
	}
	return c.requestOK(ctx, line)
}

// SaveConf asks tor to write its configuration to its torrc (GETINFO
// config-file). force is needed when the torrc uses %include. Never call
// it on a tor started with a torrc you did not create.
func (c *Conn) SaveConf(ctx context.Context, force bool) error {
	if force {
		return c.requestOK(ctx, "SAVECONF FORCE")
	}
	return c.requestOK(ctx, "SAVECONF")
}

// LoadConf replaces tor's whole configuration with the given torrc text
// (control-spec §3.22): every option it does not set returns to its
// default.
func (c *Conn) LoadConf(ctx context.Context, torrc string) error {
	_, err := c.RequestData(ctx, "+LOADCONF", torrc)
	return err
}

// Signals for [Conn.Signal] (control-spec §3.7).
const (
	SignalReload        = "RELOAD"
	SignalShutdown      = "SHUTDOWN"
	SignalDump          = "DUMP"
	SignalDebug         = "DEBUG"
	SignalHalt          = "HALT"
	SignalNewnym        = "NEWNYM"
	SignalClearDNSCache = "CLEARDNSCACHE"
	SignalHeartbeat     = "HEARTBEAT"
	SignalActive        = "ACTIVE"
	SignalDormant       = "DORMANT"
)

// Signal sends a signal to tor (SIGNAL, control-spec §3.7). Tor answers
// before a SHUTDOWN or HALT takes effect.
func (c *Conn) Signal(ctx context.Context, signal string) error {
	if err := CheckToken("signal", signal); err != nil {
		return err
	}
	return c.requestOK(ctx, "SIGNAL "+signal)
}

// AddressMapping is one MAPADDRESS pair: requests for From go to To.
type AddressMapping struct {
	From, To string
	// Err is set in results for a pair tor refused.
	Err error
}

// MapAddress adds address mappings (control-spec §3.8). A null From
// ("0.0.0.0", "::" or ".") asks tor to pick an unused address. The results
// hold one entry per reply line, in order, with the addresses tor chose or
// the error for that pair; the error returned is the first pair's error
// (tor may accept some pairs and refuse others).
func (c *Conn) MapAddress(ctx context.Context, pairs ...AddressMapping) ([]AddressMapping, error) {
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%w: MAPADDRESS needs at least one pair", ErrInvalidArgument)
	}
	var b strings.Builder
	b.WriteString("MAPADDRESS")
	for _, p := range pairs {
		if err := checkKeyword("MAPADDRESS address", p.From); err != nil {
			return nil, err
		}
		if err := CheckToken("MAPADDRESS address", p.To); err != nil {
			return nil, err
		}
		b.WriteString(" " + p.From + "=" + p.To)
	}
	reply, err := c.roundTrip(ctx, newRequest("MAPADDRESS", b.String(), nil))
	if reply == nil {
		return nil, err
	}
	var firstErr error
	res := make([]AddressMapping, 0, len(reply.Lines))
	for _, l := range reply.Lines {
		if l.Code >= 200 && l.Code < 300 {
			from, to, _ := strings.Cut(l.Text, "=")
			res = append(res, AddressMapping{From: from, To: to})
			continue
		}
		e := &Error{Command: "MAPADDRESS", Code: l.Code, Text: l.Text, Lines: []Line{l}}
		if firstErr == nil {
			firstErr = e
		}
		res = append(res, AddressMapping{Err: e})
	}
	return res, firstErr
}

// ExtendCircuit extends circuit circID through the given relays
// (fingerprints or nicknames), or builds a new circuit when circID is "0"
// (control-spec §3.10); purpose ("general" or "controller") may be empty.
// It returns the circuit's ID.
func (c *Conn) ExtendCircuit(ctx context.Context, circID string, path []string, purpose string) (string, error) {
	if err := CheckToken("circuit ID", circID); err != nil {
		return "", err
	}
	line := "EXTENDCIRCUIT " + circID
	if len(path) > 0 {
		for _, p := range path {
			if err := CheckToken("relay", p); err != nil {
				return "", err
			}
			if strings.Contains(p, ",") {
				return "", fmt.Errorf("%w: relay %q contains ','", ErrInvalidArgument, p)
			}
		}
		line += " " + strings.Join(path, ",")
	}
	if purpose != "" {
		if err := CheckToken("purpose", purpose); err != nil {
			return "", err
		}
		line += " purpose=" + purpose
	}
	reply, err := c.Request(ctx, line)
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(reply.Text(), "EXTENDED ")
	if !ok {
		return "", fmt.Errorf("%w: unexpected EXTENDCIRCUIT reply %q", ErrProtocol, trimForError(reply.Text()))
	}
	return strings.TrimSpace(id), nil
}

// SetCircuitPurpose changes a circuit's purpose (control-spec §3.11).
func (c *Conn) SetCircuitPurpose(ctx context.Context, circID, purpose string) error {
	if err := CheckToken("circuit ID", circID); err != nil {
		return err
	}
	if err := CheckToken("purpose", purpose); err != nil {
		return err
	}
	return c.requestOK(ctx, "SETCIRCUITPURPOSE "+circID+" purpose="+purpose)
}

// AttachStream attaches a stream to a circuit (control-spec §3.13); circID
// "0" lets tor choose. hop, when non-zero, selects the hop of the circuit
// that should exit the stream.
func (c *Conn) AttachStream(ctx context.Context, streamID, circID string, hop int) error {
	if err := CheckToken("stream ID", streamID); err != nil {
		return err
	}
	if err := CheckToken("circuit ID", circID); err != nil {
		return err
	}
	line := "ATTACHSTREAM " + streamID + " " + circID
	if hop > 0 {
		line += " HOP=" + strconv.Itoa(hop)
	}
	return c.requestOK(ctx, line)
}

// RedirectStream changes the destination address (and, when port is
// non-zero, port) of a stream (control-spec §3.15).
func (c *Conn) RedirectStream(ctx context.Context, streamID, address string, port int) error {
	if err := CheckToken("stream ID", streamID); err != nil {
		return err
	}
	if err := CheckToken("address", address); err != nil {
		return err
	}
	line := "REDIRECTSTREAM " + streamID + " " + address
	if port > 0 {
		line += " " + strconv.Itoa(port)
	}
	return c.requestOK(ctx, line)
}

// CloseStream closes a stream with the given reason code (control-spec
// §3.16; the RELAY_END reasons of tor-spec §6.3, 1 = MISC).
func (c *Conn) CloseStream(ctx context.Context, streamID string, reason int) error {
	if err := CheckToken("stream ID", streamID); err != nil {
		return err
	}
	return c.requestOK(ctx, "CLOSESTREAM "+streamID+" "+strconv.Itoa(reason))
}

// CloseCircuit closes a circuit (control-spec §3.17); with ifUnused only
// when no stream uses it.
func (c *Conn) CloseCircuit(ctx context.Context, circID string, ifUnused bool) error {
	if err := CheckToken("circuit ID", circID); err != nil {
		return err
	}
	line := "CLOSECIRCUIT " + circID
	if ifUnused {
		line += " IfUnused"
	}
	return c.requestOK(ctx, line)
}

// PostDescriptor gives tor a router descriptor (+POSTDESCRIPTOR,
// control-spec §3.14). purpose ("general", "controller", "bridge") and
// cache ("yes" or "no") may be empty. A 251 reply (descriptor not new)
// counts as success.
func (c *Conn) PostDescriptor(ctx context.Context, descriptor, purpose, cache string) error {
	line := "+POSTDESCRIPTOR"
	if purpose != "" {
		if err := CheckToken("purpose", purpose); err != nil {
			return err
		}
		line += " purpose=" + purpose
	}
	if cache != "" {
		if err := CheckToken("cache", cache); err != nil {
			return err
		}
		line += " cache=" + cache
	}
	_, err := c.RequestData(ctx, line, descriptor)
	return err
}

// Quit sends QUIT; tor answers and closes the connection, which this call
// then closes on its side too.
func (c *Conn) Quit(ctx context.Context) error {
	err := c.requestOK(ctx, "QUIT")
	c.Close()
	return err
}

// UseFeature enables protocol features (control-spec §3.19). The features
// of old tors (EXTENDED_EVENTS, VERBOSE_NAMES) are always on today.
func (c *Conn) UseFeature(ctx context.Context, features ...string) error {
	var b strings.Builder
	b.WriteString("USEFEATURE")
	if err := appendTokens(&b, "feature", features); err != nil {
		return err
	}
	return c.requestOK(ctx, b.String())
}

// Resolve asks tor to resolve host names, or with reverse IP addresses
// (control-spec §3.20). The answers arrive later as ADDRMAP events:
// subscribe to "ADDRMAP" first.
func (c *Conn) Resolve(ctx context.Context, reverse bool, addresses ...string) error {
	if len(addresses) == 0 {
		return fmt.Errorf("%w: RESOLVE needs at least one address", ErrInvalidArgument)
	}
	var b strings.Builder
	b.WriteString("RESOLVE")
	if reverse {
		b.WriteString(" mode=reverse")
	}
	if err := appendTokens(&b, "address", addresses); err != nil {
		return err
	}
	return c.requestOK(ctx, b.String())
}

// TakeOwnership makes tor exit when this connection closes (control-spec
// §3.23).
func (c *Conn) TakeOwnership(ctx context.Context) error { return c.requestOK(ctx, "TAKEOWNERSHIP") }

// DropOwnership undoes TakeOwnership and __OwningControllerProcess
// (control-spec §3.33).
func (c *Conn) DropOwnership(ctx context.Context) error { return c.requestOK(ctx, "DROPOWNERSHIP") }

// DropGuards forgets tor's entry guards (control-spec §3.25).
func (c *Conn) DropGuards(ctx context.Context) error { return c.requestOK(ctx, "DROPGUARDS") }

// DropTimeouts resets tor's circuit build timeout history (control-spec
// §3.34); tor then emits BUILDTIMEOUT_SET RESET.
func (c *Conn) DropTimeouts(ctx context.Context) error { return c.requestOK(ctx, "DROPTIMEOUTS") }

// HSFetch asks tor to fetch the descriptor of an onion service (the
// 56-character address, without ".onion"), optionally from the given
// HSDirs (fingerprints) (control-spec §3.26). Tor answers at once; the
// outcome arrives as HS_DESC and HS_DESC_CONTENT events.
func (c *Conn) HSFetch(ctx context.Context, address string, servers ...string) error {
	if err := CheckToken("onion address", address); err != nil {
		return err
	}
	line := "HSFETCH " + strings.TrimSuffix(address, ".onion")
	for _, s := range servers {
		if err := CheckToken("server", s); err != nil {
			return err
		}
		line += " SERVER=" + s
	}
	return c.requestOK(ctx, line)
}

// HSPost uploads an onion service descriptor (+HSPOST, control-spec
// §3.29). hsAddress (needed for v3 descriptors) and servers may be empty.
func (c *Conn) HSPost(ctx context.Context, descriptor, hsAddress string, servers ...string) error {
	line := "+HSPOST"
	for _, s := range servers {
		if err := CheckToken("server", s); err != nil {
			return err
		}
		line += " SERVER=" + s
	}
	if hsAddress != "" {
		if err := CheckToken("onion address", hsAddress); err != nil {
			return err
		}
		line += " HSADDRESS=" + strings.TrimSuffix(hsAddress, ".onion")
	}
	_, err := c.RequestData(ctx, line, descriptor)
	return err
}
