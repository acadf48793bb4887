package control

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Typed events. A typed event has a field for each argument users
// need; the other keyword arguments (tor adds some in new versions) are in
// [Event.Args] of the event it came from. Unknown enum values (a new
// circuit status, a new reason) are passed through as strings. The
// parsers return an error for an event whose required fields are missing;
// optional fields that do not parse (a malformed time, say) are left zero.
// String fields are substrings of the event's text (or decoded quoted
// values): parsing allocates the result and nothing else for most events.

// ErrMalformedEvent is matched by errors from the typed event parsers.
var ErrMalformedEvent = errors.New("control: malformed event")

func malformed(ev *Event, why string) error {
	return fmt.Errorf("%w: %s: %s: %q", ErrMalformedEvent, ev.Type, why, trimForError(ev.Lines[0].Text))
}

// Relay is one relay of a circuit path or a LongName: "$FP~nick", the old
// "$FP=nick", "$FP" or a bare nickname.
type Relay struct {
	// Fingerprint is the hex identity fingerprint, without '$'.
	Fingerprint string
	// Nickname may be empty.
	Nickname string
}

// parseRelay parses a LongName.
func parseRelay(s string) Relay {
	if !strings.HasPrefix(s, "$") {
		return Relay{Nickname: s}
	}
	s = s[1:]
	if len(s) > 40 && (s[40] == '~' || s[40] == '=') { // the usual 40-digit fingerprint
		return Relay{Fingerprint: s[:40], Nickname: s[41:]}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '~' || s[i] == '=' {
			return Relay{Fingerprint: s[:i], Nickname: s[i+1:]}
		}
	}
	return Relay{Fingerprint: s}
}

// String renders the relay as a LongName ("$FP~nick").
func (r Relay) String() string {
	switch {
	case r.Fingerprint == "":
		return r.Nickname
	case r.Nickname == "":
		return "$" + r.Fingerprint
	}
	return "$" + r.Fingerprint + "~" + r.Nickname
}

// parsePath parses a comma-separated list of LongNames into buf (whose
// backing array is allocated with the event), capped at its length so
// that an append by a user copies it.
func parsePath(buf []Relay, s string) []Relay {
	if s == "" {
		return nil
	}
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			buf = append(buf, parseRelay(s))
			return buf[:len(buf):len(buf)]
		}
		buf = append(buf, parseRelay(s[:i]))
		s = s[i+1:]
	}
}

// splitList splits a comma-separated list into buf, as parsePath does.
func splitList(buf []string, s string) []string {
	if s == "" {
		return nil
	}
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			buf = append(buf, s)
			return buf[:len(buf):len(buf)]
		}
		buf = append(buf, s[:i])
		s = s[i+1:]
	}
}

// StatusEvent is a STATUS_GENERAL, STATUS_CLIENT or STATUS_SERVER event
// (control-spec §4.1.10). The keyword arguments of a BOOTSTRAP status are
// in [StatusEvent.Bootstrap]; those of other actions (SKEW=, PORT=, ...)
// are in [Event.Args] of the event.
type StatusEvent struct {
	Type     string // STATUS_GENERAL, STATUS_CLIENT or STATUS_SERVER
	Severity string // NOTICE, WARN or ERR
	Action   string // BOOTSTRAP, CIRCUIT_ESTABLISHED, CLOCK_SKEW, ...

	boot *Bootstrap // set for BOOTSTRAP
}

// statusAlloc is a StatusEvent and its Bootstrap, allocated at once.
type statusAlloc struct {
	e StatusEvent
	b Bootstrap
}

// parseStatusEvent parses a STATUS_* event.
func parseStatusEvent(ev *Event) (*StatusEvent, error) {
	switch ev.Type {
	case "STATUS_GENERAL", "STATUS_CLIENT", "STATUS_SERVER", "STATUS_SEVER":
	default:
		return nil, wantType(ev, "STATUS_GENERAL or STATUS_CLIENT or STATUS_SERVER or STATUS_SEVER")
	}
	a := typed[statusAlloc](ev)
	e, b := &a.e, &a.b
	e.Type = ev.Type
	sc := evScan{s: ev.Text()}
	n := 0
	var host string
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.Severity = v
			case 1:
				e.Action = v
			}
			n++
		case "PROGRESS":
			b.Progress = atoi(v)
		case "TAG":
			b.Tag = v
		case "SUMMARY":
			b.Summary = v
		case "WARNING":
			b.Warning = v
		case "REASON":
			b.Reason = v
		case "COUNT":
			b.Count = atoi(v)
		case "RECOMMENDATION":
			b.Recommendation = v
		case "HOSTID":
			b.Host = v
		case "HOST":
			host = v
		case "HOSTADDR":
			b.HostAddr = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 2 {
		return nil, malformed(ev, "want severity and action")
	}
	if e.Action == "BOOTSTRAP" {
		b.Severity = e.Severity
		if b.Host == "" {
			b.Host = host
		}
		e.boot = b
	}
	return e, nil
}

// Bootstrap is the progress report of a STATUS_CLIENT BOOTSTRAP event
// (control-spec §4.1.10 and §5.5).
type Bootstrap struct {
	Severity string // NOTICE, or WARN when there is a problem
	Progress int    // 0-100
	Tag      string // "starting", ..., "done"
	Summary  string
	// Problem fields, set when Severity is WARN.
	Warning        string
	Reason         string
	Count          int
	Recommendation string // "ignore" or "warn"
	// Host is the relay involved: HOSTID (tor 0.4.9) or HOST (the spec's
	// spelling); HostAddr its address.
	Host     string
	HostAddr string
}

// Done reports whether bootstrapping has finished.
func (b *Bootstrap) Done() bool { return b.Progress >= 100 || b.Tag == "done" }

// Bootstrap returns the bootstrap report of a STATUS_CLIENT BOOTSTRAP
// event (a copy the caller may change).
func (e *StatusEvent) Bootstrap() (*Bootstrap, bool) {
	if e.boot == nil {
		return nil, false
	}
	b := *e.boot
	return &b, true
}

// ParseBootstrap parses the progress of a STATUS_CLIENT BOOTSTRAP event, or
// of a GETINFO status/bootstrap-phase value ("NOTICE BOOTSTRAP
// PROGRESS=100 TAG=done SUMMARY=...").
func ParseBootstrap(text string) (*Bootstrap, error) {
	ev := &Event{Type: "STATUS_CLIENT", Lines: []Line{{Code: 650, Sep: ' ', Text: "STATUS_CLIENT " + text}}}
	st, err := parseStatusEvent(ev)
	if err != nil {
		return nil, err
	}
	if st.boot == nil {
		return nil, malformed(ev, "not a BOOTSTRAP status")
	}
	return st.boot, nil
}

// CircEvent is a CIRC event (control-spec §4.1.1). Keyword arguments
// without a field here (HS_POW, CONFLUX_ID, ...) are in [Event.Args] of
// the event.
type CircEvent struct {
	ID     string
	Status string // LAUNCHED, BUILT, GUARD_WAIT, EXTENDED, FAILED, CLOSED
	Path   []Relay
	// BuildFlags such as ONEHOP_TUNNEL, IS_INTERNAL, NEED_CAPACITY.
	BuildFlags   []string
	Purpose      string
	HSState      string
	RendQuery    string
	TimeCreated  time.Time
	Reason       string
	RemoteReason string
	// SOCKSUsername and SOCKSPassword are the SOCKS credentials of the
	// streams the circuit was built for (IsolateSOCKSAuth), when tor
	// sends them.
	SOCKSUsername string
	SOCKSPassword string
}

// circAlloc is a CircEvent with room for a usual path and flag list,
// allocated at once.
type circAlloc struct {
	e     CircEvent
	path  [4]Relay
	flags [4]string
}

// parseCircEvent parses a CIRC event.
func parseCircEvent(ev *Event) (*CircEvent, error) {
	if ev.Type != "CIRC" {
		return nil, wantType(ev, "CIRC")
	}
	a := typed[circAlloc](ev)
	e := &a.e
	sc := evScan{s: ev.Text()}
	n := 0
	var path, flags, created string
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.ID = v
			case 1:
				e.Status = v
			case 2:
				path = v
			}
			n++
		case "BUILD_FLAGS":
			flags = v
		case "PURPOSE":
			e.Purpose = v
		case "HS_STATE":
			e.HSState = v
		case "REND_QUERY":
			e.RendQuery = v
		case "TIME_CREATED":
			created = v
		case "REASON":
			e.Reason = v
		case "REMOTE_REASON":
			e.RemoteReason = v
		case "SOCKS_USERNAME":
			e.SOCKSUsername = v
		case "SOCKS_PASSWORD":
			e.SOCKSPassword = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 2 {
		return nil, malformed(ev, "want circuit ID and status")
	}
	e.Path = parsePath(a.path[:0], path)
	e.BuildFlags = splitList(a.flags[:0], flags)
	e.TimeCreated = parseTime(created)
	return e, nil
}

// CircMinorEvent is a CIRC_MINOR event (control-spec §4.1.19). Keyword
// arguments without a field here are in [Event.Args] of the event.
type CircMinorEvent struct {
	ID    string
	Event string // PURPOSE_CHANGED, CANNIBALIZED
	Path  []Relay

	BuildFlags  []string
	Purpose     string
	HSState     string
	RendQuery   string
	TimeCreated time.Time
	OldPurpose  string
	OldHSState  string
}

// circMinorAlloc is a CircMinorEvent with room for a usual path and flag
// list, allocated at once.
type circMinorAlloc struct {
	e     CircMinorEvent
	path  [4]Relay
	flags [4]string
}

// parseCircMinorEvent parses a CIRC_MINOR event.
func parseCircMinorEvent(ev *Event) (*CircMinorEvent, error) {
	if ev.Type != "CIRC_MINOR" {
		return nil, wantType(ev, "CIRC_MINOR")
	}
	a := typed[circMinorAlloc](ev)
	e := &a.e
	sc := evScan{s: ev.Text()}
	n := 0
	var path, flags, created string
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.ID = v
			case 1:
				e.Event = v
			case 2:
				path = v
			}
			n++
		case "BUILD_FLAGS":
			flags = v
		case "PURPOSE":
			e.Purpose = v
		case "HS_STATE":
			e.HSState = v
		case "REND_QUERY":
			e.RendQuery = v
		case "TIME_CREATED":
			created = v
		case "OLD_PURPOSE":
			e.OldPurpose = v
		case "OLD_HS_STATE":
			e.OldHSState = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 2 {
		return nil, malformed(ev, "want circuit ID and event")
	}
	e.Path = parsePath(a.path[:0], path)
	e.BuildFlags = splitList(a.flags[:0], flags)
	e.TimeCreated = parseTime(created)
	return e, nil
}

// StreamEvent is a STREAM event (control-spec §4.1.2). Keyword arguments
// without a field here (CLIENT_PROTOCOL, NYM_EPOCH, SESSION_GROUP,
// ISO_FIELDS, ...) are in [Event.Args] of the event.
type StreamEvent struct {
	ID        string
	Status    string // NEW, SUCCEEDED, FAILED, CLOSED, DETACHED, ...
	CircuitID string // "0" when not attached
	// Target is "host:port"; TargetHost and TargetPort split it at the
	// last colon (IPv6 literals keep their colons).
	Target       string
	TargetHost   string
	TargetPort   int
	Reason       string
	RemoteReason string
	Source       string
	SourceAddr   string
	Purpose      string
	// SOCKSUsername and SOCKSPassword are the credentials the SOCKS
	// client gave (empty when it gave none).
	SOCKSUsername string
	SOCKSPassword string
}

// parseStreamEvent parses a STREAM event.
func parseStreamEvent(ev *Event) (*StreamEvent, error) {
	if ev.Type != "STREAM" {
		return nil, wantType(ev, "STREAM")
	}
	e := typed[StreamEvent](ev)
	sc := evScan{s: ev.Text()}
	n := 0
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.ID = v
			case 1:
				e.Status = v
			case 2:
				e.CircuitID = v
			case 3:
				e.Target = v
			}
			n++
		case "REASON":
			e.Reason = v
		case "REMOTE_REASON":
			e.RemoteReason = v
		case "SOURCE":
			e.Source = v
		case "SOURCE_ADDR":
			e.SourceAddr = v
		case "PURPOSE":
			e.Purpose = v
		case "SOCKS_USERNAME":
			e.SOCKSUsername = v
		case "SOCKS_PASSWORD":
			e.SOCKSPassword = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 4 {
		return nil, malformed(ev, "want stream ID, status, circuit ID and target")
	}
	e.TargetHost = e.Target
	if i := strings.LastIndexByte(e.Target, ':'); i >= 0 {
		if p, err := strconv.Atoi(e.Target[i+1:]); err == nil {
			e.TargetHost, e.TargetPort = e.Target[:i], p
		}
	}
	return e, nil
}

// ORConnEvent is an ORCONN event (control-spec §4.1.3). Keyword arguments
// without a field here are in [Event.Args] of the event.
type ORConnEvent struct {
	Target string // LongName or address:port
	Status string // NEW, LAUNCHED, CONNECTED, FAILED, CLOSED
	Reason string
	NCircs int
	ID     string
}

// parseORConnEvent parses an ORCONN event.
func parseORConnEvent(ev *Event) (*ORConnEvent, error) {
	if ev.Type != "ORCONN" {
		return nil, wantType(ev, "ORCONN")
	}
	e := typed[ORConnEvent](ev)
	sc := evScan{s: ev.Text()}
	n := 0
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.Target = v
			case 1:
				e.Status = v
			}
			n++
		case "REASON":
			e.Reason = v
		case "NCIRCS":
			e.NCircs = atoi(v)
		case "ID":
			e.ID = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 2 {
		return nil, malformed(ev, "want target and status")
	}
	return e, nil
}

// BWEvent is a BW event, sent once per second (control-spec §4.1.4). The
// per-type counts some tors add (DIR=, EXIT=, ...) are in [Event.Args] of
// the event.
type BWEvent struct {
	Read, Written uint64
}

// parseBWEvent parses a BW event.
func parseBWEvent(ev *Event) (*BWEvent, error) {
	if ev.Type != "BW" {
		return nil, wantType(ev, "BW")
	}
	var pos [2]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 2 {
		return nil, malformed(ev, "want bytes read and written")
	}
	r, err1 := strconv.ParseUint(pos[0], 10, 64)
	w, err2 := strconv.ParseUint(pos[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, malformed(ev, "byte counts are not numbers")
	}
	e := typed[BWEvent](ev)
	*e = BWEvent{Read: r, Written: w}
	return e, nil
}

// CircBWEvent is a CIRC_BW event (control-spec §4.1.22). The other
// counters tor sends (DELIVERED_READ, OVERHEAD_WRITTEN, SS, CWND, RTT,
// ...) are in [Event.Args] of the event.
type CircBWEvent struct {
	ID            string
	Read, Written uint64
	Time          time.Time
}

// parseCircBWEvent parses a CIRC_BW event.
func parseCircBWEvent(ev *Event) (*CircBWEvent, error) {
	if ev.Type != "CIRC_BW" {
		return nil, wantType(ev, "CIRC_BW")
	}
	e := typed[CircBWEvent](ev)
	sc := evScan{s: ev.Text()}
	var tm string
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "ID":
			e.ID = v
		case "READ":
			e.Read = atou(v)
		case "WRITTEN":
			e.Written = atou(v)
		case "TIME":
			tm = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if e.ID == "" {
		return nil, malformed(ev, "no ID")
	}
	e.Time = parseTime(tm)
	return e, nil
}

// StreamBWEvent is a STREAM_BW event (control-spec §4.1.13). Note that tor
// sends the bytes written before the bytes read.
type StreamBWEvent struct {
	ID            string
	Written, Read uint64
	Time          time.Time
}

// parseStreamBWEvent parses a STREAM_BW event.
func parseStreamBWEvent(ev *Event) (*StreamBWEvent, error) {
	if ev.Type != "STREAM_BW" {
		return nil, wantType(ev, "STREAM_BW")
	}
	var pos [4]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 3 {
		return nil, malformed(ev, "want stream ID, written and read")
	}
	e := typed[StreamBWEvent](ev)
	*e = StreamBWEvent{ID: pos[0], Written: atou(pos[1]), Read: atou(pos[2]), Time: parseTime(pos[3])}
	return e, nil
}

// AddrMapEvent is an ADDRMAP event (control-spec §4.1.7). Keyword
// arguments without a field here are in [Event.Args] of the event.
type AddrMapEvent struct {
	Address    string
	NewAddress string // "<error>" when resolution failed
	// Expiry is tor's local-time expiry ("NEVER" or a time) as sent;
	// Expires is the UTC expiry (zero when absent or NEVER).
	Expiry   string
	Expires  time.Time
	Error    string
	Cached   string // "YES" or "NO"
	StreamID string
}

// parseAddrMapEvent parses an ADDRMAP event.
func parseAddrMapEvent(ev *Event) (*AddrMapEvent, error) {
	if ev.Type != "ADDRMAP" {
		return nil, wantType(ev, "ADDRMAP")
	}
	e := &AddrMapEvent{}
	sc := evScan{s: ev.Text()}
	n := 0
	var expires string
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.Address = v
			case 1:
				e.NewAddress = v
			case 2:
				e.Expiry = v
			}
			n++
		case "error":
			e.Error = v
		case "CACHED":
			e.Cached = v
		case "STREAMID":
			e.StreamID = v
		case "EXPIRES":
			expires = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 2 {
		return nil, malformed(ev, "want address and new address")
	}
	e.Expires = parseTime(expires)
	return e, nil
}

// SignalEvent is a SIGNAL event (control-spec §4.1.17).
type SignalEvent struct{ Signal string }

// parseSignalEvent parses a SIGNAL event.
func parseSignalEvent(ev *Event) (*SignalEvent, error) {
	if ev.Type != "SIGNAL" {
		return nil, wantType(ev, "SIGNAL")
	}
	var pos [1]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, malformed(ev, "no signal")
	}
	return &SignalEvent{Signal: pos[0]}, nil
}

// NetworkLivenessEvent is a NETWORK_LIVENESS event (control-spec §4.1.27).
type NetworkLivenessEvent struct{ Status string } // UP or DOWN

// parseNetworkLivenessEvent parses a NETWORK_LIVENESS event.
func parseNetworkLivenessEvent(ev *Event) (*NetworkLivenessEvent, error) {
	if ev.Type != "NETWORK_LIVENESS" {
		return nil, wantType(ev, "NETWORK_LIVENESS")
	}
	var pos [1]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, malformed(ev, "no status")
	}
	return &NetworkLivenessEvent{Status: pos[0]}, nil
}

// GuardEvent is a GUARD event (control-spec §4.1.11).
type GuardEvent struct {
	GuardType string // ENTRY
	Relay     Relay
	Status    string // NEW, UP, DOWN, BAD, BAD_L2, GOOD, DROPPED
}

// parseGuardEvent parses a GUARD event.
func parseGuardEvent(ev *Event) (*GuardEvent, error) {
	if ev.Type != "GUARD" {
		return nil, wantType(ev, "GUARD")
	}
	var pos [3]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 3 {
		return nil, malformed(ev, "want type, name and status")
	}
	return &GuardEvent{GuardType: pos[0], Relay: parseRelay(pos[1]), Status: pos[2]}, nil
}

// NewDescEvent is a NEWDESC event (control-spec §4.1.6).
type NewDescEvent struct{ Relays []Relay }

// parseNewDescEvent parses a NEWDESC event.
func parseNewDescEvent(ev *Event) (*NewDescEvent, error) {
	if ev.Type != "NEWDESC" {
		return nil, wantType(ev, "NEWDESC")
	}
	n, err := scanPositional(ev, nil)
	if err != nil {
		return nil, err
	}
	e := &NewDescEvent{}
	if n == 0 {
		return e, nil
	}
	e.Relays = make([]Relay, 0, n)
	sc := evScan{s: ev.Text()}
	for {
		k, v, ok := sc.next()
		if !ok {
			return e, nil
		}
		if k == "" {
			e.Relays = append(e.Relays, parseRelay(v))
		}
	}
}

// NSEvent is an NS or NEWCONSENSUS event (control-spec §4.1.12, §4.1.15):
// router status entries in network-status format, in a data block.
type NSEvent struct {
	Type     string // NS or NEWCONSENSUS
	Document string
}

// parseNSEvent parses an NS or NEWCONSENSUS event.
func parseNSEvent(ev *Event) (*NSEvent, error) {
	if ev.Type != "NS" && ev.Type != "NEWCONSENSUS" {
		return nil, fmt.Errorf("%w: got a %s event, want NS or NEWCONSENSUS", ErrMalformedEvent, ev.Type)
	}
	if !ev.Lines[0].HasData() {
		return nil, malformed(ev, "no data block")
	}
	return &NSEvent{Type: ev.Type, Document: ev.Lines[0].Data}, nil
}

// LogEvent is a DEBUG, INFO, NOTICE, WARN or ERR event (control-spec
// §4.1.5), in its one-line or data-block form.
type LogEvent struct {
	Severity string
	Message  string
}

// parseLogEvent parses a log event.
func parseLogEvent(ev *Event) (*LogEvent, error) {
	switch ev.Type {
	case "DEBUG", "INFO", "NOTICE", "WARN", "ERR":
	default:
		return nil, fmt.Errorf("%w: got a %s event, want a log event", ErrMalformedEvent, ev.Type)
	}
	if ev.Lines[0].HasData() {
		return &LogEvent{Severity: ev.Type, Message: ev.Lines[0].Data}, nil
	}
	return &LogEvent{Severity: ev.Type, Message: ev.Text()}, nil
}

// ConfChangedEvent is a CONF_CHANGED event (control-spec §4.1.18): the
// options a SETCONF (or RESETCONF, LOADCONF, SIGHUP) changed, in order. A
// multi-valued option gives one entry per value; an option that became
// unset (or returned to a default meaning unset) has Unset set.
type ConfChangedEvent struct {
	Entries []ConfEntry
}

// parseConfChangedEvent parses a CONF_CHANGED event.
func parseConfChangedEvent(ev *Event) (*ConfChangedEvent, error) {
	if ev.Type != "CONF_CHANGED" {
		return nil, fmt.Errorf("%w: got a %s event, want CONF_CHANGED", ErrMalformedEvent, ev.Type)
	}
	e := &ConfChangedEvent{}
	for _, l := range ev.Lines[1:] {
		if l.Sep == ' ' && l.Text == "OK" {
			break
		}
		ce, err := parseConfLine(l.Text)
		if err != nil {
			return nil, malformed(ev, err.Error())
		}
		e.Entries = append(e.Entries, ce)
	}
	return e, nil
}

// HSDescEvent is an HS_DESC event (control-spec §4.1.25). Keyword
// arguments without a field here are in [Event.Args] of the event.
type HSDescEvent struct {
	// Action is REQUESTED, UPLOAD, RECEIVED, UPLOADED, IGNORE, FAILED or
	// CREATED.
	Action string
	// Address is the onion address without ".onion", or "UNKNOWN".
	Address string
	// AuthType is NO_AUTH, BASIC_AUTH, STEALTH_AUTH or UNKNOWN (v3
	// services report UNKNOWN).
	AuthType string
	// HSDir is the directory involved (a LongName) or "UNKNOWN".
	HSDir        string
	DescriptorID string
	// Reason is set for FAILED: BAD_DESC, QUERY_REJECTED, UPLOAD_REJECTED,
	// NOT_FOUND, UNEXPECTED, QUERY_NO_HSDIR, QUERY_RATE_LIMITED.
	Reason     string
	Replica    string
	HSDirIndex string
}

// HSDirFingerprint returns the fingerprint part of HSDir.
func (e *HSDescEvent) HSDirFingerprint() string { return parseRelay(e.HSDir).Fingerprint }

// parseHSDescEvent parses an HS_DESC event.
func parseHSDescEvent(ev *Event) (*HSDescEvent, error) {
	if ev.Type != "HS_DESC" {
		return nil, wantType(ev, "HS_DESC")
	}
	e := typed[HSDescEvent](ev)
	sc := evScan{s: ev.Text()}
	n := 0
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		switch k {
		case "":
			switch n {
			case 0:
				e.Action = v
			case 1:
				e.Address = v
			case 2:
				e.AuthType = v
			case 3:
				e.HSDir = v
			case 4:
				e.DescriptorID = v
			}
			n++
		case "REASON":
			e.Reason = v
		case "REPLICA":
			e.Replica = v
		case "HSDIR_INDEX":
			e.HSDirIndex = v
		}
	}
	if sc.err != nil {
		return nil, malformed(ev, sc.err.Error())
	}
	if n < 4 {
		return nil, malformed(ev, "want action, address, auth type and HSDir")
	}
	return e, nil
}

// HSDescContentEvent is an HS_DESC_CONTENT event (control-spec §4.1.26):
// a fetched descriptor. Descriptor is empty when the fetch failed.
type HSDescContentEvent struct {
	Address      string
	DescriptorID string
	HSDir        string
	Descriptor   string
}

// parseHSDescContentEvent parses an HS_DESC_CONTENT event.
func parseHSDescContentEvent(ev *Event) (*HSDescContentEvent, error) {
	if ev.Type != "HS_DESC_CONTENT" {
		return nil, wantType(ev, "HS_DESC_CONTENT")
	}
	var pos [3]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 3 {
		return nil, malformed(ev, "want address, descriptor ID and HSDir")
	}
	return &HSDescContentEvent{Address: pos[0], DescriptorID: pos[1], HSDir: pos[2], Descriptor: ev.Data()}, nil
}

// BuildTimeoutSetEvent is a BUILDTIMEOUT_SET event (control-spec
// §4.1.16). Its keyword arguments (TOTAL_TIMES, TIMEOUT_MS, XM, ALPHA,
// CUTOFF_QUANTILE, TIMEOUT_RATE, CLOSE_MS, CLOSE_RATE) are in
// [Event.Args] of the event.
type BuildTimeoutSetEvent struct {
	Type string // COMPUTED, RESET, SUSPENDED, DISCARD, RESUME
}

// parseBuildTimeoutSetEvent parses a BUILDTIMEOUT_SET event.
func parseBuildTimeoutSetEvent(ev *Event) (*BuildTimeoutSetEvent, error) {
	if ev.Type != "BUILDTIMEOUT_SET" {
		return nil, wantType(ev, "BUILDTIMEOUT_SET")
	}
	var pos [1]string
	n, err := scanPositional(ev, pos[:])
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, malformed(ev, "no type")
	}
	return &BuildTimeoutSetEvent{Type: pos[0]}, nil
}

// typed returns the memory for ev's typed form: the zeroed slot the reader
// gave the event (see eventArena.slot), or a new T. An event is parsed
// once (Event.Parsed), so its slot serves once; ev.slot is not cleared,
// because other subscribers read it unsynchronized in Parsed.
func typed[T any](ev *Event) *T {
	if p, ok := ev.slot.(*T); ok {
		return p
	}
	return new(T)
}

// parseEvent decodes an event into its typed form: *StatusEvent,
// *CircEvent, *CircMinorEvent, *StreamEvent, *ORConnEvent, *BWEvent,
// *CircBWEvent, *StreamBWEvent, *AddrMapEvent, *SignalEvent,
// *NetworkLivenessEvent, *GuardEvent, *NewDescEvent, *NSEvent, *LogEvent,
// *ConfChangedEvent, *HSDescEvent, *HSDescContentEvent or
// *BuildTimeoutSetEvent. An event type without a typed form is returned
// as the *Event itself, not an error.
func parseEvent(ev *Event) (any, error) {
	switch ev.Type {
	case "STATUS_GENERAL", "STATUS_CLIENT", "STATUS_SERVER", "STATUS_SEVER":
		return parseStatusEvent(ev)
	case "CIRC":
		return parseCircEvent(ev)
	case "CIRC_MINOR":
		return parseCircMinorEvent(ev)
	case "STREAM":
		return parseStreamEvent(ev)
	case "ORCONN":
		return parseORConnEvent(ev)
	case "BW":
		return parseBWEvent(ev)
	case "CIRC_BW":
		return parseCircBWEvent(ev)
	case "STREAM_BW":
		return parseStreamBWEvent(ev)
	case "ADDRMAP":
		return parseAddrMapEvent(ev)
	case "SIGNAL":
		return parseSignalEvent(ev)
	case "NETWORK_LIVENESS":
		return parseNetworkLivenessEvent(ev)
	case "GUARD":
		return parseGuardEvent(ev)
	case "NEWDESC":
		return parseNewDescEvent(ev)
	case "NS", "NEWCONSENSUS":
		return parseNSEvent(ev)
	case "DEBUG", "INFO", "NOTICE", "WARN", "ERR":
		return parseLogEvent(ev)
	case "CONF_CHANGED":
		return parseConfChangedEvent(ev)
	case "HS_DESC":
		return parseHSDescEvent(ev)
	case "HS_DESC_CONTENT":
		return parseHSDescContentEvent(ev)
	case "BUILDTIMEOUT_SET":
		return parseBuildTimeoutSetEvent(ev)
	}
	return ev, nil
}
