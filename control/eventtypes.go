package control

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Typed events. Every typed event keeps all keyword arguments in Args, so
// keywords this package does not know (tor adds some in new versions) are
// not lost, and unknown enum values (a new circuit status, a new reason)
// are passed through as strings. ParseXxx functions return an error for an
// event whose required fields are missing; optional fields that do not
// parse (a malformed time, say) are left zero and remain in Args.

// ErrMalformedEvent is matched by errors from the typed event parsers.
var ErrMalformedEvent = errors.New("control: malformed event")

func malformed(ev *Event, why string) error {
	return fmt.Errorf("%w: %s: %s: %q", ErrMalformedEvent, ev.Type, why, trimForError(ev.Lines[0].Text))
}

func eventArgs(ev *Event, typ ...string) (Args, []string, error) {
	if len(typ) > 0 {
		ok := false
		for _, t := range typ {
			ok = ok || ev.Type == t
		}
		if !ok {
			return nil, nil, fmt.Errorf("%w: got a %s event, want %s", ErrMalformedEvent, ev.Type, strings.Join(typ, " or "))
		}
	}
	args, err := ev.Args()
	if err != nil {
		return nil, nil, malformed(ev, err.Error())
	}
	return args, args.Positional(), nil
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
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
	if i := strings.IndexAny(s, "~="); i >= 0 {
		return Relay{Fingerprint: s[:i], Nickname: s[i+1:]}
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

func parsePath(s string) []Relay {
	if s == "" {
		return nil
	}
	path := make([]Relay, 0, strings.Count(s, ",")+1)
	for {
		p, rest, more := strings.Cut(s, ",")
		path = append(path, parseRelay(p))
		if !more {
			return path
		}
		s = rest
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// StatusEvent is a STATUS_GENERAL, STATUS_CLIENT or STATUS_SERVER event
// (control-spec §4.1.10).
type StatusEvent struct {
	Type     string // STATUS_GENERAL, STATUS_CLIENT or STATUS_SERVER
	Severity string // NOTICE, WARN or ERR
	Action   string // BOOTSTRAP, CIRCUIT_ESTABLISHED, CLOCK_SKEW, ...
	Args     map[string]string
}

// parseStatusEvent parses a STATUS_* event.
func parseStatusEvent(ev *Event) (*StatusEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "STATUS_GENERAL", "STATUS_CLIENT", "STATUS_SERVER", "STATUS_SEVER"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 2 {
		return nil, malformed(ev, "want severity and action")
	}
	return &StatusEvent{Type: ev.Type, Severity: pos[0], Action: pos[1], Args: a.m()}, nil
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
// event.
func (e *StatusEvent) Bootstrap() (*Bootstrap, bool) {
	if e.Action != "BOOTSTRAP" {
		return nil, false
	}
	b := &Bootstrap{
		Severity:       e.Severity,
		Tag:            e.Args["TAG"],
		Summary:        e.Args["SUMMARY"],
		Warning:        e.Args["WARNING"],
		Reason:         e.Args["REASON"],
		Recommendation: e.Args["RECOMMENDATION"],
		Host:           e.Args["HOSTID"],
		HostAddr:       e.Args["HOSTADDR"],
	}
	if b.Host == "" {
		b.Host = e.Args["HOST"]
	}
	b.Progress, _ = strconv.Atoi(e.Args["PROGRESS"])
	b.Count, _ = strconv.Atoi(e.Args["COUNT"])
	return b, true
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
	b, ok := st.Bootstrap()
	if !ok {
		return nil, malformed(ev, "not a BOOTSTRAP status")
	}
	return b, nil
}

// CircEvent is a CIRC event (control-spec §4.1.1).
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
	Args         map[string]string
}

// parseCircEvent parses a CIRC event.
func parseCircEvent(ev *Event) (*CircEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "CIRC"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 2 {
		return nil, malformed(ev, "want circuit ID and status")
	}
	e := &CircEvent{ID: pos[0], Status: pos[1], Args: a.m(),
		BuildFlags: splitList(a.get("BUILD_FLAGS")), Purpose: a.get("PURPOSE"), HSState: a.get("HS_STATE"),
		RendQuery: a.get("REND_QUERY"), TimeCreated: parseTime(a.get("TIME_CREATED")),
		Reason: a.get("REASON"), RemoteReason: a.get("REMOTE_REASON")}
	if len(pos) > 2 {
		e.Path = parsePath(pos[2])
	}
	return e, nil
}

// CircMinorEvent is a CIRC_MINOR event (control-spec §4.1.19).
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
	Args        map[string]string
}

// parseCircMinorEvent parses a CIRC_MINOR event.
func parseCircMinorEvent(ev *Event) (*CircMinorEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "CIRC_MINOR"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 2 {
		return nil, malformed(ev, "want circuit ID and event")
	}
	e := &CircMinorEvent{ID: pos[0], Event: pos[1], Args: a.m(),
		BuildFlags: splitList(a.get("BUILD_FLAGS")), Purpose: a.get("PURPOSE"), HSState: a.get("HS_STATE"),
		RendQuery: a.get("REND_QUERY"), TimeCreated: parseTime(a.get("TIME_CREATED")),
		OldPurpose: a.get("OLD_PURPOSE"), OldHSState: a.get("OLD_HS_STATE")}
	if len(pos) > 2 {
		e.Path = parsePath(pos[2])
	}
	return e, nil
}

// StreamEvent is a STREAM event (control-spec §4.1.2).
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
	Args         map[string]string
}

// parseStreamEvent parses a STREAM event.
func parseStreamEvent(ev *Event) (*StreamEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "STREAM"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 4 {
		return nil, malformed(ev, "want stream ID, status, circuit ID and target")
	}
	e := &StreamEvent{ID: pos[0], Status: pos[1], CircuitID: pos[2], Target: pos[3], Args: a.m(),
		Reason: a.get("REASON"), RemoteReason: a.get("REMOTE_REASON"), Source: a.get("SOURCE"),
		SourceAddr: a.get("SOURCE_ADDR"), Purpose: a.get("PURPOSE")}
	e.TargetHost = e.Target
	if i := strings.LastIndexByte(e.Target, ':'); i >= 0 {
		if p, err := strconv.Atoi(e.Target[i+1:]); err == nil {
			e.TargetHost, e.TargetPort = e.Target[:i], p
		}
	}
	return e, nil
}

// ORConnEvent is an ORCONN event (control-spec §4.1.3).
type ORConnEvent struct {
	Target string // LongName or address:port
	Status string // NEW, LAUNCHED, CONNECTED, FAILED, CLOSED
	Reason string
	NCircs int
	ID     string
	Args   map[string]string
}

// parseORConnEvent parses an ORCONN event.
func parseORConnEvent(ev *Event) (*ORConnEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "ORCONN"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 2 {
		return nil, malformed(ev, "want target and status")
	}
	e := &ORConnEvent{Target: pos[0], Status: pos[1], Reason: a.get("REASON"), ID: a.get("ID"), Args: a.m()}
	e.NCircs, _ = strconv.Atoi(a.get("NCIRCS"))
	return e, nil
}

// BWEvent is a BW event, sent once per second (control-spec §4.1.4).
type BWEvent struct {
	Read, Written uint64
	Args          map[string]string
}

// parseBWEvent parses a BW event.
func parseBWEvent(ev *Event) (*BWEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "BW"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 2 {
		return nil, malformed(ev, "want bytes read and written")
	}
	r, err1 := strconv.ParseUint(pos[0], 10, 64)
	w, err2 := strconv.ParseUint(pos[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, malformed(ev, "byte counts are not numbers")
	}
	return &BWEvent{Read: r, Written: w, Args: a.m()}, nil
}

// CircBWEvent is a CIRC_BW event (control-spec §4.1.22).
type CircBWEvent struct {
	ID            string
	Read, Written uint64
	Time          time.Time
	Args          map[string]string
}

// parseCircBWEvent parses a CIRC_BW event.
func parseCircBWEvent(ev *Event) (*CircBWEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "CIRC_BW"); err != nil {
		return nil, err
	}
	if a.get("ID") == "" {
		return nil, malformed(ev, "no ID")
	}
	return &CircBWEvent{ID: a.get("ID"), Read: atou(a.get("READ")), Written: atou(a.get("WRITTEN")), Time: parseTime(a.get("TIME")), Args: a.m()}, nil
}

// StreamBWEvent is a STREAM_BW event (control-spec §4.1.13). Note that tor
// sends the bytes written before the bytes read.
type StreamBWEvent struct {
	ID            string
	Written, Read uint64
	Time          time.Time
	Args          map[string]string
}

// parseStreamBWEvent parses a STREAM_BW event.
func parseStreamBWEvent(ev *Event) (*StreamBWEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "STREAM_BW"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 3 {
		return nil, malformed(ev, "want stream ID, written and read")
	}
	e := &StreamBWEvent{ID: pos[0], Written: atou(pos[1]), Read: atou(pos[2]), Args: a.m()}
	if len(pos) > 3 {
		e.Time = parseTime(pos[3])
	}
	return e, nil
}

// AddrMapEvent is an ADDRMAP event (control-spec §4.1.7).
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
	Args     map[string]string
}

// parseAddrMapEvent parses an ADDRMAP event.
func parseAddrMapEvent(ev *Event) (*AddrMapEvent, error) {
	args, pos, err := eventArgs(ev, "ADDRMAP")
	if err != nil {
		return nil, err
	}
	if len(pos) < 2 {
		return nil, malformed(ev, "want address and new address")
	}
	m := args.Map()
	e := &AddrMapEvent{Address: pos[0], NewAddress: pos[1], Error: m["error"], Cached: m["CACHED"],
		StreamID: m["STREAMID"], Expires: parseTime(m["EXPIRES"]), Args: m}
	if len(pos) > 2 {
		e.Expiry = pos[2]
	}
	return e, nil
}

// SignalEvent is a SIGNAL event (control-spec §4.1.17).
type SignalEvent struct{ Signal string }

// parseSignalEvent parses a SIGNAL event.
func parseSignalEvent(ev *Event) (*SignalEvent, error) {
	_, pos, err := eventArgs(ev, "SIGNAL")
	if err != nil {
		return nil, err
	}
	if len(pos) < 1 {
		return nil, malformed(ev, "no signal")
	}
	return &SignalEvent{Signal: pos[0]}, nil
}

// NetworkLivenessEvent is a NETWORK_LIVENESS event (control-spec §4.1.27).
type NetworkLivenessEvent struct{ Status string } // UP or DOWN

// parseNetworkLivenessEvent parses a NETWORK_LIVENESS event.
func parseNetworkLivenessEvent(ev *Event) (*NetworkLivenessEvent, error) {
	_, pos, err := eventArgs(ev, "NETWORK_LIVENESS")
	if err != nil {
		return nil, err
	}
	if len(pos) < 1 {
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
	_, pos, err := eventArgs(ev, "GUARD")
	if err != nil {
		return nil, err
	}
	if len(pos) < 3 {
		return nil, malformed(ev, "want type, name and status")
	}
	return &GuardEvent{GuardType: pos[0], Relay: parseRelay(pos[1]), Status: pos[2]}, nil
}

// NewDescEvent is a NEWDESC event (control-spec §4.1.6).
type NewDescEvent struct{ Relays []Relay }

// parseNewDescEvent parses a NEWDESC event.
func parseNewDescEvent(ev *Event) (*NewDescEvent, error) {
	_, pos, err := eventArgs(ev, "NEWDESC")
	if err != nil {
		return nil, err
	}
	e := &NewDescEvent{}
	for _, p := range pos {
		e.Relays = append(e.Relays, parseRelay(p))
	}
	return e, nil
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

// HSDescEvent is an HS_DESC event (control-spec §4.1.25).
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
	Args       map[string]string
}

// HSDirFingerprint returns the fingerprint part of HSDir.
func (e *HSDescEvent) HSDirFingerprint() string { return parseRelay(e.HSDir).Fingerprint }

// parseHSDescEvent parses an HS_DESC event.
func parseHSDescEvent(ev *Event) (*HSDescEvent, error) {
	var a evArgs
	if err := scanEvent(&a, ev, "HS_DESC"); err != nil {
		return nil, err
	}
	pos := a.ps()
	if len(pos) < 4 {
		return nil, malformed(ev, "want action, address, auth type and HSDir")
	}
	e := &HSDescEvent{Action: pos[0], Address: pos[1], AuthType: pos[2], HSDir: pos[3],
		Reason: a.get("REASON"), Replica: a.get("REPLICA"), HSDirIndex: a.get("HSDIR_INDEX"), Args: a.m()}
	if len(pos) > 4 {
		e.DescriptorID = pos[4]
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
	_, pos, err := eventArgs(ev, "HS_DESC_CONTENT")
	if err != nil {
		return nil, err
	}
	if len(pos) < 3 {
		return nil, malformed(ev, "want address, descriptor ID and HSDir")
	}
	return &HSDescContentEvent{Address: pos[0], DescriptorID: pos[1], HSDir: pos[2], Descriptor: ev.Data()}, nil
}

// BuildTimeoutSetEvent is a BUILDTIMEOUT_SET event (control-spec
// §4.1.16).
type BuildTimeoutSetEvent struct {
	Type string // COMPUTED, RESET, SUSPENDED, DISCARD, RESUME
	Args map[string]string
}

// parseBuildTimeoutSetEvent parses a BUILDTIMEOUT_SET event.
func parseBuildTimeoutSetEvent(ev *Event) (*BuildTimeoutSetEvent, error) {
	args, pos, err := eventArgs(ev, "BUILDTIMEOUT_SET")
	if err != nil {
		return nil, err
	}
	if len(pos) < 1 {
		return nil, malformed(ev, "no type")
	}
	return &BuildTimeoutSetEvent{Type: pos[0], Args: args.Map()}, nil
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
