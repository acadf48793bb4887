package control

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ev reads one event from wire text ("650 ..." lines joined by "\n").
func ev(t *testing.T, wire string) *Event {
	t.Helper()
	wire = strings.ReplaceAll(wire, "\n", "\r\n") + "\r\n"
	r, err := newReplyReader(strings.NewReader(wire), 0).ReadReply()
	require.NoError(t, err)
	return newEvent(r)
}

func TestParseStatusEvent(t *testing.T) {
	e := ev(t, `650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY="Handshaking with a relay" WARNING="DONE" REASON=DONE COUNT=1 RECOMMENDATION=ignore HOSTID="9C09AAAA" HOSTADDR="64.65.1.157:443" NEWKEY=x`)
	v, err := parseEvent(e)
	require.NoError(t, err)
	st := v.(*StatusEvent)
	assert.Equal(t, "STATUS_CLIENT", st.Type)
	assert.Equal(t, "WARN", st.Severity)
	assert.Equal(t, "BOOTSTRAP", st.Action)
	args, err := e.Args() // keywords without a field stay in the event's Args
	require.NoError(t, err)
	assert.Equal(t, "x", args.Map()["NEWKEY"])
	b, ok := st.Bootstrap()
	require.True(t, ok)
	b.Tag = "changed by the caller" // a copy: the parsed event is shared
	b2, _ := st.Bootstrap()
	assert.Equal(t, "handshake", b2.Tag)
	b, _ = st.Bootstrap()
	assert.Equal(t, &Bootstrap{Severity: "WARN", Progress: 14, Tag: "handshake", Summary: "Handshaking with a relay",
		Warning: "DONE", Reason: "DONE", Count: 1, Recommendation: "ignore", Host: "9C09AAAA", HostAddr: "64.65.1.157:443"}, b)
	assert.False(t, b.Done())

	b, err = ParseBootstrap(`NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done" HOST=AB`)
	require.NoError(t, err)
	assert.True(t, b.Done())
	assert.Equal(t, "AB", b.Host)
	_, err = ParseBootstrap(`NOTICE CIRCUIT_ESTABLISHED`)
	assert.ErrorIs(t, err, ErrMalformedEvent)
	_, err = ParseBootstrap(`NOTICE`)
	assert.ErrorIs(t, err, ErrMalformedEvent)

	st, err = parseStatusEvent(ev(t, `650 STATUS_GENERAL WARN CLOCK_SKEW SKEW=-300 SOURCE=OR:1.2.3.4:9001`))
	require.NoError(t, err)
	_, ok = st.Bootstrap()
	assert.False(t, ok)
	_, err = parseStatusEvent(ev(t, `650 CIRC 1 BUILT`))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	_, err = parseStatusEvent(ev(t, `650 STATUS_SERVER NOTICE K="unterminated`))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func TestParseCircEvents(t *testing.T) {
	c, err := parseCircEvent(ev(t, `650 CIRC 1 FAILED BUILD_FLAGS=ONEHOP_TUNNEL,IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-22T06:05:03.131771 REASON=CHANNEL_CLOSED`))
	require.NoError(t, err)
	assert.Equal(t, "1", c.ID)
	assert.Equal(t, "FAILED", c.Status)
	assert.Nil(t, c.Path)
	assert.Equal(t, []string{"ONEHOP_TUNNEL", "IS_INTERNAL", "NEED_CAPACITY"}, c.BuildFlags)
	assert.Equal(t, "CHANNEL_CLOSED", c.Reason)
	assert.Equal(t, time.Date(2026, 11, 22, 6, 5, 3, 131771000, time.UTC), c.TimeCreated)

	c, err = parseCircEvent(ev(t, `650 CIRC 7 BUILT $AAAA~alpha,$BBBB=beta,$CCCC,delta PURPOSE=HS_SERVICE_REND HS_STATE=HSSR_JOINED REND_QUERY=abc SOCKS_USERNAME="It's a me, Mario!" TIME_CREATED=garbage`))
	require.NoError(t, err)
	assert.Equal(t, []Relay{{"AAAA", "alpha"}, {"BBBB", "beta"}, {"CCCC", ""}, {"", "delta"}}, c.Path)
	assert.Equal(t, "It's a me, Mario!", c.SOCKSUsername)
	assert.Empty(t, c.SOCKSPassword)
	assert.True(t, c.TimeCreated.IsZero())
	assert.Equal(t, "HSSR_JOINED", c.HSState)
	assert.Equal(t, "$AAAA~alpha", c.Path[0].String())
	assert.Equal(t, "$CCCC", c.Path[2].String())
	assert.Equal(t, "delta", c.Path[3].String())

	_, err = parseCircEvent(ev(t, `650 CIRC 1`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	m, err := parseCircMinorEvent(ev(t, `650 CIRC_MINOR 9 PURPOSE_CHANGED $AAAA~a PURPOSE=HS_CLIENT_REND OLD_PURPOSE=GENERAL OLD_HS_STATE=HSCR_CONNECTING`))
	require.NoError(t, err)
	assert.Equal(t, "PURPOSE_CHANGED", m.Event)
	assert.Equal(t, "GENERAL", m.OldPurpose)
	assert.Equal(t, "HSCR_CONNECTING", m.OldHSState)
	assert.Len(t, m.Path, 1)
	_, err = parseCircMinorEvent(ev(t, `650 CIRC_MINOR 9`))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func TestParseStreamAndConnEvents(t *testing.T) {
	s, err := parseStreamEvent(ev(t, `650 STREAM 42 SUCCEEDED 7 2001:db8::1:443 SOURCE_ADDR=127.0.0.1:5555 PURPOSE=USER CLIENT_PROTOCOL=SOCKS5`))
	require.NoError(t, err)
	assert.Equal(t, "2001:db8::1", s.TargetHost)
	assert.Equal(t, 443, s.TargetPort)
	assert.Equal(t, "127.0.0.1:5555", s.SourceAddr)
	assert.Empty(t, s.SOCKSUsername)
	se := ev(t, `650 STREAM 42 SUCCEEDED 7 2001:db8::1:443 SOURCE_ADDR=127.0.0.1:5555 PURPOSE=USER CLIENT_PROTOCOL=SOCKS5`)
	args, err := se.Args()
	require.NoError(t, err)
	assert.Equal(t, "SOCKS5", args.Map()["CLIENT_PROTOCOL"])
	s, err = parseStreamEvent(ev(t, `650 STREAM 45 NEW 0 example.com:80 SOURCE=SOCKS SOCKS_USERNAME="user one" SOCKS_PASSWORD="p\\w" REMOTE_REASON=DONE`))
	require.NoError(t, err)
	assert.Equal(t, &StreamEvent{ID: "45", Status: "NEW", CircuitID: "0", Target: "example.com:80", TargetHost: "example.com", TargetPort: 80,
		RemoteReason: "DONE", Source: "SOCKS", SOCKSUsername: "user one", SOCKSPassword: `p\w`}, s)
	s, err = parseStreamEvent(ev(t, `650 STREAM 43 NEW 0 (Tor_internal):0 REASON=MISC`))
	require.NoError(t, err)
	assert.Equal(t, "(Tor_internal)", s.TargetHost)
	s, err = parseStreamEvent(ev(t, `650 STREAM 44 NEW 0 noport`))
	require.NoError(t, err)
	assert.Equal(t, "noport", s.TargetHost)
	_, err = parseStreamEvent(ev(t, `650 STREAM 44 NEW 0`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	o, err := parseORConnEvent(ev(t, `650 ORCONN $AAAA~relay CLOSED REASON=DONE NCIRCS=3 ID=18`))
	require.NoError(t, err)
	assert.Equal(t, &ORConnEvent{Target: "$AAAA~relay", Status: "CLOSED", Reason: "DONE", NCircs: 3, ID: "18"}, o)
	_, err = parseORConnEvent(ev(t, `650 ORCONN x`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	g, err := parseGuardEvent(ev(t, `650 GUARD ENTRY $AAAA=nick GOOD`))
	require.NoError(t, err)
	assert.Equal(t, &GuardEvent{GuardType: "ENTRY", Relay: Relay{"AAAA", "nick"}, Status: "GOOD"}, g)
	_, err = parseGuardEvent(ev(t, `650 GUARD ENTRY x`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	n, err := parseNewDescEvent(ev(t, `650 NEWDESC $AAAA~a $BBBB~b`))
	require.NoError(t, err)
	assert.Len(t, n.Relays, 2)
}

func TestParseBandwidthEvents(t *testing.T) {
	b, err := parseBWEvent(ev(t, `650 BW 1024 2048 DIR=10 EXIT=5`))
	require.NoError(t, err)
	assert.Equal(t, uint64(1024), b.Read)
	assert.Equal(t, uint64(2048), b.Written)

	_, err = parseBWEvent(ev(t, `650 BW x y`))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	_, err = parseBWEvent(ev(t, `650 BW 1`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	cb, err := parseCircBWEvent(ev(t, `650 CIRC_BW ID=3 READ=10 WRITTEN=20 TIME=2024-01-02T03:04:05.5 DELIVERED_READ=9 SS=1 CWND=124`))
	require.NoError(t, err)
	assert.Equal(t, "3", cb.ID)
	assert.Equal(t, uint64(10), cb.Read)
	assert.Equal(t, uint64(20), cb.Written)
	assert.Equal(t, time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC), cb.Time)

	_, err = parseCircBWEvent(ev(t, `650 CIRC_BW READ=1`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	sb, err := parseStreamBWEvent(ev(t, `650 STREAM_BW 5 100 200 2024-01-02T03:04:05.000000`))
	require.NoError(t, err)
	assert.Equal(t, &StreamBWEvent{ID: "5", Written: 100, Read: 200, Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}, sb)
	_, err = parseStreamBWEvent(ev(t, `650 STREAM_BW 5 100`))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func TestParseMiscEvents(t *testing.T) {
	a, err := parseAddrMapEvent(ev(t, `650 ADDRMAP example.com 1.2.3.4 "2012-11-19 00:50:13" EXPIRES="2012-11-19 05:50:13" CACHED="NO" STREAMID=12`))
	require.NoError(t, err)
	assert.Equal(t, "example.com", a.Address)
	assert.Equal(t, "1.2.3.4", a.NewAddress)
	assert.Equal(t, "2012-11-19 00:50:13", a.Expiry)
	assert.Equal(t, time.Date(2012, 11, 19, 5, 50, 13, 0, time.UTC), a.Expires)
	assert.Equal(t, "NO", a.Cached)
	assert.Equal(t, "12", a.StreamID)
	a, err = parseAddrMapEvent(ev(t, `650 ADDRMAP bad.example <error> NEVER error=yes`))
	require.NoError(t, err)
	assert.Equal(t, "yes", a.Error)
	_, err = parseAddrMapEvent(ev(t, `650 ADDRMAP x`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	s, err := parseSignalEvent(ev(t, `650 SIGNAL NEWNYM`))
	require.NoError(t, err)
	assert.Equal(t, "NEWNYM", s.Signal)
	_, err = parseSignalEvent(ev(t, `650 SIGNAL`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	nl, err := parseNetworkLivenessEvent(ev(t, `650 NETWORK_LIVENESS UP`))
	require.NoError(t, err)
	assert.Equal(t, "UP", nl.Status)
	_, err = parseNetworkLivenessEvent(ev(t, `650 NETWORK_LIVENESS`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	bt, err := parseBuildTimeoutSetEvent(ev(t, `650 BUILDTIMEOUT_SET RESET TOTAL_TIMES=0 TIMEOUT_MS=60000`))
	require.NoError(t, err)
	assert.Equal(t, "RESET", bt.Type)

	_, err = parseBuildTimeoutSetEvent(ev(t, `650 BUILDTIMEOUT_SET`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	ns, err := parseNSEvent(ev(t, "650+NS\nr a b c\ns Fast\n.\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, &NSEvent{Type: "NS", Document: "r a b c\ns Fast"}, ns)
	_, err = parseNSEvent(ev(t, "650 NS"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	_, err = parseNSEvent(ev(t, "650 BW 1 2"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	nc, err := parseEvent(ev(t, "650+NEWCONSENSUS\nr a\n.\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, "NEWCONSENSUS", nc.(*NSEvent).Type)

	l, err := parseLogEvent(ev(t, `650 WARN Something "odd" happened`))
	require.NoError(t, err)
	assert.Equal(t, &LogEvent{Severity: "WARN", Message: `Something "odd" happened`}, l)
	l, err = parseLogEvent(ev(t, "650+NOTICE\nline one\n..two\n.\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, "line one\n.two", l.Message)
	_, err = parseLogEvent(ev(t, `650 BW 1 2`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	cc, err := parseConfChangedEvent(ev(t, "650-CONF_CHANGED\n650-ExitPolicy=accept *:80\n650-ExitPolicy=reject *:*\n650-ContactInfo=\"utf8 \\303\\251\"\n650-HiddenServiceOptions\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, []ConfEntry{{Key: "ExitPolicy", Value: "accept *:80"}, {Key: "ExitPolicy", Value: "reject *:*"},
		{Key: "ContactInfo", Value: "utf8 é"}, {Key: "HiddenServiceOptions", Unset: true}}, cc.Entries)
	_, err = parseConfChangedEvent(ev(t, "650-CONF_CHANGED\n650-K=\"bad\n650 OK"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	_, err = parseConfChangedEvent(ev(t, "650 BW 1 2"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func TestParseHSDescEvents(t *testing.T) {
	const addr = "kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd"
	h, err := parseHSDescEvent(ev(t, `650 HS_DESC UPLOAD `+addr+` UNKNOWN $AAAA~hsdir bLiNdEd+/key HSDIR_INDEX=0123abcd`))
	require.NoError(t, err)
	assert.Equal(t, "UPLOAD", h.Action)
	assert.Equal(t, addr, h.Address)
	assert.Equal(t, "UNKNOWN", h.AuthType)
	assert.Equal(t, "$AAAA~hsdir", h.HSDir)
	assert.Equal(t, "AAAA", h.HSDirFingerprint())
	assert.Equal(t, "bLiNdEd+/key", h.DescriptorID)
	assert.Equal(t, "0123abcd", h.HSDirIndex)
	h, err = parseHSDescEvent(ev(t, `650 HS_DESC FAILED `+addr+` NO_AUTH UNKNOWN key REASON=QUERY_NO_HSDIR`))
	require.NoError(t, err)
	assert.Equal(t, "QUERY_NO_HSDIR", h.Reason)
	h, err = parseHSDescEvent(ev(t, `650 HS_DESC UPLOADED `+addr+` UNKNOWN $AAAA~hsdir`))
	require.NoError(t, err)
	assert.Empty(t, h.DescriptorID)
	_, err = parseHSDescEvent(ev(t, `650 HS_DESC CREATED x`))
	assert.ErrorIs(t, err, ErrMalformedEvent)

	c, err := parseHSDescContentEvent(ev(t, "650+HS_DESC_CONTENT "+addr+" descid $AAAA~h\nhs-descriptor 3\n..dotted\n.\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, &HSDescContentEvent{Address: addr, DescriptorID: "descid", HSDir: "$AAAA~h", Descriptor: "hs-descriptor 3\n.dotted"}, c)
	c, err = parseHSDescContentEvent(ev(t, "650+HS_DESC_CONTENT UNKNOWN x UNKNOWN\n\n.\n650 OK"))
	require.NoError(t, err)
	assert.Empty(t, c.Descriptor)
	_, err = parseHSDescContentEvent(ev(t, "650 HS_DESC_CONTENT x"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func TestParseEventDispatch(t *testing.T) {
	for wire, want := range map[string]any{
		`650 STATUS_SERVER NOTICE X`:            &StatusEvent{},
		`650 CIRC 1 LAUNCHED`:                   &CircEvent{},
		`650 CIRC_MINOR 1 CANNIBALIZED`:         &CircMinorEvent{},
		`650 STREAM 1 NEW 0 a:1`:                &StreamEvent{},
		`650 ORCONN a NEW`:                      &ORConnEvent{},
		`650 BW 1 2`:                            &BWEvent{},
		`650 CIRC_BW ID=1`:                      &CircBWEvent{},
		`650 STREAM_BW 1 2 3`:                   &StreamBWEvent{},
		`650 ADDRMAP a b NEVER`:                 &AddrMapEvent{},
		`650 SIGNAL RELOAD`:                     &SignalEvent{},
		`650 NETWORK_LIVENESS DOWN`:             &NetworkLivenessEvent{},
		`650 GUARD ENTRY a NEW`:                 &GuardEvent{},
		`650 NEWDESC a`:                         &NewDescEvent{},
		`650 DEBUG x`:                           &LogEvent{},
		`650 HS_DESC CREATED a UNKNOWN UNKNOWN`: &HSDescEvent{},
		`650 BUILDTIMEOUT_SET COMPUTED`:         &BuildTimeoutSetEvent{},
		`650 FUTURE_EVENT whatever K=V`:         &Event{},
	} {
		got, err := parseEvent(ev(t, wire))
		require.NoError(t, err, wire)
		assert.IsType(t, want, got, wire)
	}
	e := ev(t, "650 FUTURE_EVENT")
	assert.Equal(t, "FUTURE_EVENT", e.Type)
	assert.Equal(t, "", e.Text())
	assert.Equal(t, "", e.Data())
	assert.Equal(t, 650, e.Code())
	assert.Equal(t, "650 FUTURE_EVENT", e.String())
	_, err := parseEvent(ev(t, "650 HS_DESC_CONTENT"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
	cc, err := parseEvent(ev(t, "650 CONF_CHANGED"))
	require.NoError(t, err)
	assert.Empty(t, cc.(*ConfChangedEvent).Entries)
	_, err = parseCircEvent(ev(t, "650 CIRC 1 BUILT K=\"x"))
	assert.ErrorIs(t, err, ErrMalformedEvent)
}

func BenchmarkParseEvent(b *testing.B) {
	for name, wire := range map[string]string{
		"CIRC":          "650 CIRC 7 BUILT $AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA~alpha,$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB~beta,$CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC~gamma BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-22T06:05:03.131771",
		"STATUS_CLIENT": `650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY="Handshaking with a relay"`,
		"HS_DESC":       "650 HS_DESC UPLOAD kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd UNKNOWN $AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA~hsdir b64blindedkey HSDIR_INDEX=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"CONF_CHANGED":  "650-CONF_CHANGED\r\n650-ContactInfo=\"tab\\there\"\r\n650-ExitPolicy=accept *:80\r\n650 OK",
	} {
		b.Run(name, func(b *testing.B) {
			r, err := newReplyReader(strings.NewReader(wire+"\r\n"), 0).ReadReply()
			require.NoError(b, err)
			e := newEvent(r)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseEvent(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// onions/current is a plain value for one service and a data block for
// several (tor 0.4.9.11, see docs notes §1.7).
func TestParseOnions(t *testing.T) {
	assert.Empty(t, parseOnions(""))
	assert.Equal(t, []string{"a"}, parseOnions("a"))
	assert.Equal(t, []string{"a", "b"}, parseOnions("a\nb"))
}

// The scanner behind the typed parsers: arguments in any order, the last
// of a repeated keyword wins, long paths and flag lists, and every parser
// refuses a malformed quoted value and an event of another type.
func TestEventScanner(t *testing.T) {
	c, err := parseCircEvent(ev(t, `650 CIRC PURPOSE=GENERAL 5 REASON=A BUILT $A~a,$B~b,$C~c,$D~d,$E~e,$F~f BUILD_FLAGS=F1,F2,F3,F4,F5 REASON=B SOCKS_PASSWORD="pw"`))
	require.NoError(t, err)
	assert.Equal(t, "5", c.ID)
	assert.Equal(t, "BUILT", c.Status)
	assert.Equal(t, "GENERAL", c.Purpose)
	assert.Equal(t, "B", c.Reason)
	assert.Equal(t, "pw", c.SOCKSPassword)
	assert.Equal(t, []string{"F1", "F2", "F3", "F4", "F5"}, c.BuildFlags)
	require.Len(t, c.Path, 6)
	assert.Equal(t, Relay{"F", "f"}, c.Path[5])

	// A user's append never writes into the parsed event's arrays.
	c, err = parseCircEvent(ev(t, `650 CIRC 6 BUILT $A~a,$B~b BUILD_FLAGS=X`))
	require.NoError(t, err)
	assert.Equal(t, len(c.Path), cap(c.Path))
	assert.Equal(t, len(c.BuildFlags), cap(c.BuildFlags))
	m, err := parseCircMinorEvent(ev(t, `650 CIRC_MINOR 6 CANNIBALIZED $A~a BUILD_FLAGS=X,Y TIME_CREATED=2026-11-22T06:05:03 HS_STATE=HSCI_CONNECTING REND_QUERY=q PURPOSE=HS_CLIENT_INTRO`))
	require.NoError(t, err)
	assert.Equal(t, &CircMinorEvent{ID: "6", Event: "CANNIBALIZED", Path: []Relay{{"A", "a"}}, BuildFlags: []string{"X", "Y"},
		Purpose: "HS_CLIENT_INTRO", HSState: "HSCI_CONNECTING", RendQuery: "q", TimeCreated: time.Date(2026, 11, 22, 6, 5, 3, 0, time.UTC)}, m)

	// HOSTID wins over HOST in either order; a status other than
	// BOOTSTRAP has no bootstrap report even with bootstrap keywords.
	st, err := parseStatusEvent(ev(t, `650 STATUS_CLIENT NOTICE BOOTSTRAP HOSTID=ID1 HOST=H PROGRESS=5`))
	require.NoError(t, err)
	b, ok := st.Bootstrap()
	require.True(t, ok)
	assert.Equal(t, "ID1", b.Host)
	assert.Equal(t, 5, b.Progress)
	st, err = parseStatusEvent(ev(t, `650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED TAG=x PROGRESS=5`))
	require.NoError(t, err)
	_, ok = st.Bootstrap()
	assert.False(t, ok)
	assert.Equal(t, &StatusEvent{Type: "STATUS_CLIENT", Severity: "NOTICE", Action: "CIRCUIT_ESTABLISHED"}, st)

	nd, err := parseNewDescEvent(ev(t, `650 NEWDESC $A~a K=v $B~b`))
	require.NoError(t, err)
	assert.Equal(t, []Relay{{"A", "a"}, {"B", "b"}}, nd.Relays)
	nd, err = parseNewDescEvent(ev(t, `650 NEWDESC`))
	require.NoError(t, err)
	assert.Nil(t, nd.Relays)

	hc, err := parseHSDescContentEvent(ev(t, "650+HS_DESC_CONTENT addr descid $A~a\ndesc line\n.\n650 OK"))
	require.NoError(t, err)
	assert.Equal(t, &HSDescContentEvent{Address: "addr", DescriptorID: "descid", HSDir: "$A~a", Descriptor: "desc line"}, hc)

	parsers := map[string]func(*Event) (any, error){
		"STATUS_CLIENT":    func(e *Event) (any, error) { return parseStatusEvent(e) },
		"CIRC":             func(e *Event) (any, error) { return parseCircEvent(e) },
		"CIRC_MINOR":       func(e *Event) (any, error) { return parseCircMinorEvent(e) },
		"STREAM":           func(e *Event) (any, error) { return parseStreamEvent(e) },
		"ORCONN":           func(e *Event) (any, error) { return parseORConnEvent(e) },
		"BW":               func(e *Event) (any, error) { return parseBWEvent(e) },
		"CIRC_BW":          func(e *Event) (any, error) { return parseCircBWEvent(e) },
		"STREAM_BW":        func(e *Event) (any, error) { return parseStreamBWEvent(e) },
		"ADDRMAP":          func(e *Event) (any, error) { return parseAddrMapEvent(e) },
		"SIGNAL":           func(e *Event) (any, error) { return parseSignalEvent(e) },
		"NETWORK_LIVENESS": func(e *Event) (any, error) { return parseNetworkLivenessEvent(e) },
		"GUARD":            func(e *Event) (any, error) { return parseGuardEvent(e) },
		"NEWDESC":          func(e *Event) (any, error) { return parseNewDescEvent(e) },
		"HS_DESC":          func(e *Event) (any, error) { return parseHSDescEvent(e) },
		"HS_DESC_CONTENT":  func(e *Event) (any, error) { return parseHSDescContentEvent(e) },
		"BUILDTIMEOUT_SET": func(e *Event) (any, error) { return parseBuildTimeoutSetEvent(e) },
	}
	for typ, parse := range parsers {
		// Enough positional arguments for every parser, then a bad quote.
		for _, bad := range []string{` K="unterminated`, ` K="x"y`, ` "a\400"`} {
			_, err := parse(ev(t, "650 "+typ+" 1 2 3 4 5 ID=1"+bad))
			assert.ErrorIs(t, err, ErrMalformedEvent, "%s%s", typ, bad)
		}
		other := "SIGNAL"
		if typ == "SIGNAL" {
			other = "BW"
		}
		_, err := parse(ev(t, "650 "+other+" 1 2 3 4 5 ID=1"))
		assert.ErrorIs(t, err, ErrMalformedEvent, "%s given %s", typ, other)
	}
}

// Parsing one of the benchmark's events allocates its typed value and
// nothing else (the Args maps are gone).
func TestEventParseAllocs(t *testing.T) {
	for _, line := range []string{
		"650 CIRC 1042 BUILT $9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2~relay1,$1F2E3D4C5B6A79881726354453627180A9B8C7D6~relay2,$0A1B2C3D4E5F60718293A4B5C6D7E8F901234567~exit3 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-22T06:05:03.131771",
		"650 STREAM 2211 SUCCEEDED 1042 93.184.216.34:443 SOURCE_ADDR=127.0.0.1:51334 PURPOSE=USER",
		"650 ORCONN $9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2~relay1 CONNECTED NCIRCS=3 ID=117",
		"650 BW 10240 20480",
		"650 CIRC_BW ID=1042 READ=498 WRITTEN=996 TIME=2026-11-22T06:05:04.000000 DELIVERED_READ=498",
		`650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY="Loaded enough directory info to build circuits"`,
		"650 HS_DESC UPLOADED kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd UNKNOWN $1F2E3D4C5B6A79881726354453627180A9B8C7D6~relay2",
		`650 ADDRMAP example.com 1.2.3.4 "2012-11-19 00:50:13" EXPIRES="2012-11-19 05:50:13" CACHED="NO" STREAMID=12`,
	} {
		e := ev(t, line)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := parseEvent(e); err != nil {
				t.Fatal(err)
			}
		})
		if raceEnabled {
			continue // the race detector's instrumentation allocates
		}
		assert.Equal(t, 1.0, allocs, line)
	}
}

func TestParseRelayFingerprints(t *testing.T) {
	fp := "9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2"
	for in, want := range map[string]Relay{
		"$" + fp + "~relay1":  {fp, "relay1"},
		"$" + fp + "=relay1":  {fp, "relay1"},
		"$" + fp:              {fp, ""},
		"$" + fp + "~":        {fp, ""},
		"$" + fp + "AB~n":     {fp + "AB", "n"}, // not 40 digits: found by the loop
		"$" + fp[:39] + "~n~": {fp[:39], "n~"},
		"nick":                {"", "nick"},
		"$":                   {"", ""},
	} {
		assert.Equal(t, want, parseRelay(in), in)
	}
}

// parseTime computes the date itself; it must agree with time.Date on
// every day of the years around the leap-year rules, and refuse the days
// time.Date would normalise into the next month.
func TestParseTimeMatchesTimeDate(t *testing.T) {
	for _, y := range []int{0, 1, 1600, 1899, 1900, 1970, 1999, 2000, 2024, 2026, 2100, 9999} {
		for mo := 1; mo <= 12; mo++ {
			for d := 1; d <= 31; d++ {
				s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06d", y, mo, d, d%24, (d*7)%60, (d*13)%60, d*1234)
				want := time.Date(y, time.Month(mo), d, d%24, (d*7)%60, (d*13)%60, d*1234000, time.UTC)
				got := parseTime(s)
				if want.Day() != d {
					assert.True(t, got.IsZero(), s)
					continue
				}
				assert.Equal(t, want, got, s)
				assert.True(t, want.Equal(got), s)
			}
		}
	}
}
