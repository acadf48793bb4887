package control_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
)

// TestStatusDocuments plays GETINFO answers recorded from tor 0.4.9.11 on
// a tortest network (testdata/control/status_getinfo.txt) through the
// typed GETINFO methods.
func TestStatusDocuments(t *testing.T) {
	srv, _ := controltest.NewTranscriptServer(t, filepath.Join("..", "testdata", "control", "status_getinfo.txt"))
	c, err := control.Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// One GETINFO with four documents, parsed with the typed parsers.
	m, err := c.GetInfo(ctx, "circuit-status", "stream-status", "orconn-status", "entry-guards")
	require.NoError(t, err)
	circs, err := control.ParseCircuitStatus(m[0])
	require.NoError(t, err)
	require.Len(t, circs, 2)
	assert.Equal(t, "1", circs[0].ID)
	assert.Equal(t, "BUILT", circs[0].Status)
	assert.Equal(t, []control.Relay{{Fingerprint: "AEC4DEB34DC9AA57012C87018FD3D635B7D28E07", Nickname: "auth0"}}, circs[0].Path)
	assert.Equal(t, []string{"ONEHOP_TUNNEL", "IS_INTERNAL", "NEED_CAPACITY"}, circs[0].BuildFlags)
	assert.Equal(t, "GENERAL", circs[0].Purpose)
	assert.Equal(t, time.Date(2026, 12, 1, 11, 12, 18, 849377000, time.UTC), circs[0].TimeCreated)
	assert.Equal(t, "HS_VANGUARDS", circs[1].Purpose)
	assert.Len(t, circs[1].Path, 3)
	streams, err := control.ParseStreamStatus(m[1])
	require.NoError(t, err)
	assert.Empty(t, streams)
	orconns, err := control.ParseORConnStatus(m[2])
	require.NoError(t, err)
	require.Len(t, orconns, 1)
	assert.Equal(t, "$AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0", orconns[0].Target)
	assert.Equal(t, "CONNECTED", orconns[0].Status)
	guards, err := control.ParseEntryGuards(m[3])
	require.NoError(t, err)
	require.Len(t, guards, 1)
	assert.Equal(t, control.EntryGuard{Relay: control.Relay{Fingerprint: "AEC4DEB34DC9AA57012C87018FD3D635B7D28E07", Nickname: "auth0"}, Status: "up"}, guards[0])

	rs, err := c.NetworkStatus(ctx)
	require.NoError(t, err)
	require.Len(t, rs, 5)
	r0 := rs[3]
	assert.Equal(t, "relay0", r0.Nickname)
	assert.Equal(t, "BD167379DBCACE710540F38B31E021EF49F0F2C0", r0.Fingerprint)
	assert.Equal(t, "127.0.0.1", r0.Address)
	assert.Equal(t, 41213, r0.ORPort)
	assert.Equal(t, 0, r0.DirPort)
	assert.Equal(t, []string{"Fast", "Guard", "Running", "Stable", "Valid"}, r0.Flags)
	assert.Equal(t, time.Date(2038, 1, 1, 0, 0, 0, 0, time.UTC), r0.Published)
	assert.True(t, rs[2].HasFlag("Authority"))
	assert.Equal(t, 44611, rs[2].DirPort)
	assert.False(t, r0.HasFlag("Exit"))

	one, err := c.RouterStatusByID(ctx, "$BD167379DBCACE710540F38B31E021EF49F0F2C0")
	require.NoError(t, err)
	assert.Equal(t, r0, one)

	streams, err = c.StreamStatus(ctx)
	require.NoError(t, err)
	require.Len(t, streams, 1)
	assert.Equal(t, "12", streams[0].ID)
	assert.Equal(t, "SUCCEEDED", streams[0].Status)
	assert.Equal(t, "4", streams[0].CircuitID)
	assert.Equal(t, "127.0.0.1", streams[0].TargetHost)
	assert.Equal(t, 44507, streams[0].TargetPort)
	circs, err = c.CircuitStatus(ctx)
	require.NoError(t, err)
	require.Len(t, circs, 5)
	assert.Equal(t, "u1", circs[2].SOCKSUsername)

	cur, det, err := c.Onions(ctx)
	require.NoError(t, err)
	assert.Empty(t, cur)
	assert.Empty(t, det)
	cur, det, err = c.Onions(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"al5eydgp7ehvc3u6ro2733kvef6dodnfvxdueeelxz5yuhzb7qjixpid"}, cur)
	assert.Equal(t, []string{"3az27426kxn3jz7nvyz4izmo6yw5qj3rigj4dxrmryryhn7aja3xlcyd"}, det)
}

// A circuit-status line and the CIRC event with the same text parse to the
// same value.
func TestCircuitStatusMatchesEvent(t *testing.T) {
	line := `4 BUILT $BD167379DBCACE710540F38B31E021EF49F0F2C0~relay0,$15908558F95E2C0269F3DBBFEDBA871DA6BF80BA~relay1 PURPOSE=GENERAL TIME_CREATED=2026-12-01T11:12:20.916876 SOCKS_USERNAME="u 1"`
	st, err := control.ParseCircuitStatus(line + "\n")
	require.NoError(t, err)
	ev, err := parsedAs[*control.CircEvent](&control.Event{Type: "CIRC", Lines: []control.Line{{Code: 650, Sep: ' ', Text: "CIRC " + line}}})
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Equal(t, ev, st[0])
	assert.Equal(t, "u 1", st[0].SOCKSUsername)
}

func TestParseStatusErrors(t *testing.T) {
	_, err := control.ParseCircuitStatus("7\n")
	assert.ErrorIs(t, err, control.ErrMalformedEvent)
	_, err = control.ParseStreamStatus("1 NEW 0\n")
	assert.ErrorIs(t, err, control.ErrMalformedEvent)
	_, err = control.ParseEntryGuards("$AAAA\n")
	assert.ErrorIs(t, err, control.ErrProtocol)
	_, err = control.ParseRouterStatus("r relay0 !!!! x 2038-01-01 00:00:00 127.0.0.1 1 0\n")
	assert.ErrorIs(t, err, control.ErrProtocol)
	_, err = control.ParseRouterStatus("r relay0 vRZzedvKznEFQPOLMeAh70nw8sA 2038-01-01 00:00:00 127.0.0.1 x 0\n")
	assert.ErrorIs(t, err, control.ErrProtocol)
}

func TestParseEntryGuardsDown(t *testing.T) {
	g, err := control.ParseEntryGuards("$AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0 down 2026-12-01 11:12:18\n$BD167379DBCACE710540F38B31E021EF49F0F2C0~relay0 never-connected\n")
	require.NoError(t, err)
	require.Len(t, g, 2)
	assert.Equal(t, "down", g[0].Status)
	assert.Equal(t, time.Date(2026, 12, 1, 11, 12, 18, 0, time.UTC), g[0].Since)
	assert.Equal(t, "never-connected", g[1].Status)
	assert.True(t, g[1].Since.IsZero())
}

// The public network's full-flavour entries carry a, v, pr, w and p lines;
// microdescriptor entries have no digest and an m line.
func TestParseRouterStatusFull(t *testing.T) {
	doc := strings.Join([]string{
		"network-status-version 3",
		"r moria1 lpXfw1/+uGEym58asExGOXAgzjE Dek0zOmCKvH2wHTcSU/fNEg3jJI 2026-11-30 22:49:42 128.31.0.39 9201 9231",
		"a [2603:400a:ffff:bb8::801f:27]:9201",
		"s Authority Fast Running Stable V2Dir Valid",
		"v Tor 0.4.9.1-alpha-dev",
		"pr Conflux=1 Cons=2 Desc=2 DirCache=2",
		"w Bandwidth=20 Unmeasured=1",
		"p reject 1-65535",
		"r exit1 AAoQ1DAR6kkoo19hBAX5K0QztNw 2026-11-30 22:49:42 1.2.3.4 443 0",
		"m 7TmMqiZb/8SVeOrZ1vzkDlVsMO3Ywy25tX9TBMRJ4ak",
		"s Exit Fast Guard Running Stable Valid",
		"w Bandwidth=1000",
		"p accept 80,443",
		"directory-footer",
		"bandwidth-weights Wbd=0",
	}, "\n")
	rs, err := control.ParseRouterStatus(doc)
	require.NoError(t, err)
	require.Len(t, rs, 2)
	m := rs[0]
	assert.Equal(t, "9695DFC35FFEB861329B9F1AB04C46397020CE31", m.Fingerprint)
	assert.Equal(t, "0DE934CCE9822AF1F6C074DC494FDF3448378C92", m.Digest)
	assert.Equal(t, []string{"[2603:400a:ffff:bb8::801f:27]:9201"}, m.ORAddrs)
	assert.Equal(t, "Tor 0.4.9.1-alpha-dev", m.Version)
	assert.Equal(t, "Conflux=1 Cons=2 Desc=2 DirCache=2", m.Protocols)
	assert.Equal(t, int64(20), m.Bandwidth)
	assert.True(t, m.Unmeasured)
	assert.Equal(t, "reject 1-65535", m.Policy)
	assert.Equal(t, 9231, m.DirPort)
	e := rs[1]
	assert.Equal(t, "", e.Digest)
	assert.Equal(t, "7TmMqiZb/8SVeOrZ1vzkDlVsMO3Ywy25tX9TBMRJ4ak", e.MicrodescDigest)
	assert.True(t, e.HasFlag("Exit"))
	assert.Equal(t, "accept 80,443", e.Policy)
	assert.Equal(t, int64(1000), e.Bandwidth)

	// NEWCONSENSUS carries the same entries; NSEvent.Routers uses this parser.
	ev := &control.Event{Type: "NEWCONSENSUS", Lines: []control.Line{{Code: 650, Sep: '+', Text: "NEWCONSENSUS", Data: doc}, {Code: 650, Sep: ' ', Text: "OK"}}}
	ns, err := parsedAs[*control.NSEvent](ev)
	require.NoError(t, err)
	rs2, err := ns.Routers()
	require.NoError(t, err)
	assert.Equal(t, rs, rs2)
}
