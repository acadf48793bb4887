package tortest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFirstValidAfter(t *testing.T) {
	for _, tc := range []struct {
		now       string
		lead, vi  time.Duration
		wantVA    string
		wantOffst int
	}{
		// 08:14:06.700 + 6.5 s + 0.5 s = 08:14:13.700 -> 08:14:14
		{"2026-11-22T08:14:06.7Z", 6500 * time.Millisecond, 5 * time.Minute, "2026-11-22T08:14:14Z", (8*3600 + 14*60 + 14) % 300},
		{"2026-11-22T08:14:06Z", 6500 * time.Millisecond, 5 * time.Minute, "2026-11-22T08:14:13Z", (8*3600 + 14*60 + 13) % 300},
		{"2026-11-22T23:59:58Z", 6500 * time.Millisecond, 10 * time.Second, "2026-11-23T00:00:05Z", 5},
		{"2026-11-22T00:00:00.2Z", 6500 * time.Millisecond, 7 * time.Second, "2026-11-22T00:00:08Z", 1},
	} {
		now, err := time.Parse(time.RFC3339Nano, tc.now)
		require.NoError(t, err)
		va, off := firstValidAfter(now, tc.lead, tc.vi)
		require.Equal(t, tc.wantVA, va.Format(time.RFC3339), tc.now)
		require.Equal(t, tc.wantOffst, off, tc.now)
		require.Less(t, off, int(tc.vi/time.Second))
	}
}

func testNodes() (auth *Node, relay *Node) {
	auth = &Node{Role: Authority, Nickname: "auth0", Fingerprint: strings.Repeat("A", 40), V3Ident: strings.Repeat("B", 40), ORPort: 5000, DirPort: 5001, DataDir: "/tmp/x/auth0"}
	relay = &Node{Role: Relay, Nickname: "relay0", Fingerprint: strings.Repeat("C", 40), ORPort: 5002, DataDir: "/tmp/x/relay0"}
	return auth, relay
}

func TestTorrcs(t *testing.T) {
	auth, relay := testNodes()
	auths := []*Node{auth}
	dirAuth := "auth0 orport=5000 no-v2 v3ident=" + strings.Repeat("B", 40) + " 127.0.0.1:5001 " + strings.Repeat("A", 40)

	at := nodeTorrc(auth, auths, 5*time.Minute, 123)
	require.NoError(t, at.Validate())
	get := func(k string) string {
		v, ok := at.Get(k)
		require.True(t, ok, k)
		return v
	}
	require.Equal(t, "1", get("TestingTorNetwork"))
	require.Equal(t, dirAuth, get("DirAuthority"))
	require.Equal(t, "127.0.0.1:5000", get("ORPort"))
	require.Equal(t, "127.0.0.1:5001", get("DirPort"))
	require.Equal(t, "/tmp/x/auth0", get("DataDirectory"))
	require.Equal(t, "$"+strings.Repeat("A", 40), get("TestingDirAuthVoteHSDir"))
	require.Equal(t, "123", get("TestingV3AuthVotingStartOffset"))
	require.Equal(t, "300", get("V3AuthVotingInterval"))
	require.Equal(t, "300", get("TestingV3AuthInitialVotingInterval"))
	require.Equal(t, "0", get("SocksPort"))
	require.Equal(t, "", get("ServerDNSTestAddresses"))
	require.False(t, at.Has("DirCache"))

	rt := nodeTorrc(relay, auths, 5*time.Minute, 123)
	require.NoError(t, rt.Validate())
	v, _ := rt.Get("DirCache")
	require.Equal(t, "0", v)
	require.False(t, rt.Has("DirPort"))
	require.False(t, rt.Has("TestingV3AuthVotingStartOffset"))

	// Every address in every torrc is loopback.
	for _, tr := range [][]string{strings.Split(at.String(), "\n"), strings.Split(rt.String(), "\n")} {
		for _, line := range tr {
			for _, f := range strings.Fields(line) {
				if strings.Count(f, ".") == 3 && strings.ContainsAny(f, "0123456789") && !strings.Contains(f, "@") {
					require.True(t, strings.HasPrefix(f, "127.0.0.1"), "non-loopback address in %q", line)
				}
			}
		}
	}
}

func TestExitTorrc(t *testing.T) {
	auth, relay := testNodes()
	relay.Exit = true
	et := nodeTorrc(relay, []*Node{auth}, 5*time.Minute, 123)
	require.NoError(t, et.Validate())
	require.Equal(t, []string{"accept 127.0.0.1:*", "reject *:*"}, et.Values("ExitPolicy"))
	for k, want := range map[string]string{"ExitRelay": "1", "ExitPolicyRejectPrivate": "0", "RefuseUnknownExits": "0", "DirCache": "0"} {
		v, ok := et.Get(k)
		require.True(t, ok, k)
		require.Equal(t, want, v, k)
	}
	_, relay = testNodes()
	rt := nodeTorrc(relay, []*Node{auth}, 5*time.Minute, 123)
	require.Equal(t, []string{"reject *:*"}, rt.Values("ExitPolicy"))
	v, _ := rt.Get("ExitRelay")
	require.Equal(t, "0", v)
}

func TestExitsOption(t *testing.T) {
	for _, tc := range []struct{ relays, exits, want int }{{0, 0, 1}, {4, -1, 0}, {6, 2, 2}} {
		o := Options{Relays: tc.relays, Exits: tc.exits, TorPath: "/bin/true", GencertPath: "/bin/true"}
		require.NoError(t, o.setDefaults())
		require.Equal(t, tc.want, o.Exits)
	}
	o := Options{Relays: 2, Exits: 3, TorPath: "/bin/true", GencertPath: "/bin/true"}
	require.Error(t, o.setDefaults())
}

func TestClientTorrc(t *testing.T) {
	a0, _ := testNodes()
	a1 := &Node{Role: Authority, Nickname: "auth1", Fingerprint: strings.Repeat("D", 40), V3Ident: strings.Repeat("E", 40), ORPort: 6000, DirPort: 6001}
	n := &Network{auths: []*Node{a0, a1}}
	c := n.ClientTorrc()
	require.Equal(t, []string{"TestingTorNetwork", "DirAuthority", "GeoIPFile", "GeoIPv6File"}, c.Keys())
	require.Equal(t, n.DirAuthorities(), c.Values("DirAuthority"))
	require.Len(t, c.Values("DirAuthority"), 2)
	// Each call gives an independent copy.
	c.Set("TestingTorNetwork", "0")
	v, _ := n.ClientTorrc().Get("TestingTorNetwork")
	require.Equal(t, "1", v)
}

func TestCertFingerprint(t *testing.T) {
	fp, err := certFingerprint([]byte("dir-key-certificate-version 3\ndir-address 127.0.0.1:1\nfingerprint d9d5ddb00aa2e8f6c446e798b4ea897e8aac4784\n"))
	require.NoError(t, err)
	require.Equal(t, "D9D5DDB00AA2E8F6C446E798B4EA897E8AAC4784", fp)
	_, err = certFingerprint([]byte("fingerprint xyz\n"))
	require.ErrorContains(t, err, "malformed")
	_, err = certFingerprint([]byte("dir-key-certificate-version 3\n"))
	require.ErrorContains(t, err, "no fingerprint")
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(20)
	require.NoError(t, err)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
		require.Positive(t, p)
	}
}

func TestLogBuffer(t *testing.T) {
	var tee strings.Builder
	var mu sync.Mutex
	b := newLogBuffer("relay0", &tee, &mu)
	fmt.Fprint(b, "one\ntw")
	fmt.Fprint(b, "o\r\nthree")
	require.Equal(t, []string{"one", "two", "three"}, b.Lines())
	require.Equal(t, "relay0: one\nrelay0: two\n", tee.String())
	require.True(t, b.Contains("thr"))
	require.Equal(t, "\ttwo\n\tthree", b.Tail(2))
	for i := 0; i < maxLogLines+10; i++ {
		fmt.Fprintf(b, "line %d\n", i)
	}
	lines := b.Lines()
	require.Equal(t, maxLogLines, len(lines)) // "three" became "threeline 0"
	require.Equal(t, fmt.Sprintf("line %d", maxLogLines+9), lines[len(lines)-1])
	require.Equal(t, 12, b.Dropped())
	require.Equal(t, "\t(no log output)", newLogBuffer("x", nil, nil).Tail(3))
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	require.NoError(t, o.setDefaults())
	require.Equal(t, 1, o.Authorities)
	require.Equal(t, 4, o.Relays)
	require.Equal(t, 5*time.Minute, o.VotingInterval)
	require.Equal(t, defaultLead, o.Lead)
	for _, bad := range []Options{
		{Authorities: -1},
		{VotingInterval: 5 * time.Second},
		{VotingInterval: 10500 * time.Millisecond},
		{Lead: -time.Second},
		{TorPath: "/nonexistent/tor"},
		{GencertPath: "/nonexistent/tor-gencert"},
	} {
		require.Error(t, bad.setDefaults(), "%+v", bad)
	}
}
