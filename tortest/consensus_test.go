package tortest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The consensus files in testdata/tortest were captured from tor 0.4.9.11
// authorities started by this package: a complete one (1 authority + 4
// relays, both flavours), one with 3 authorities + 2 relays, and the first
// consensus of a network launched with a 1 s lead, before most relays had
// uploaded their descriptors.

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "tortest", name))
	require.NoError(t, err)
	return b
}

func fiveNodes() []*Node {
	return []*Node{
		{Role: Authority, Nickname: "auth0", Fingerprint: "F2E2A0A409457EFE10B98336ADDBA4C0B1F2C049"},
		{Role: Relay, Nickname: "relay0", Fingerprint: "787A01CDF0888DC8CE815C60AD41FD24A4B263BC"},
		{Role: Relay, Nickname: "relay1", Fingerprint: "47069A8203F4AC732EFFC9BA16BBCF5CA639EC7F"},
		{Role: Relay, Nickname: "relay2", Fingerprint: "2A1B86EFB902313A2414D0CF66CE40EB1CB9139A"},
		{Role: Relay, Nickname: "relay3", Fingerprint: "4BBB68B557310CF24E56EB3DE28AFB7C3C286662"},
	}
}

func TestParseConsensusComplete(t *testing.T) {
	for _, name := range []string{"microdesc-consensus-complete", "ns-consensus-complete"} {
		t.Run(name, func(t *testing.T) {
			c, err := parseConsensus(readTestdata(t, name))
			require.NoError(t, err)
			require.Equal(t, time.Date(2026, 11, 22, 8, 14, 13, 0, time.UTC), c.ValidAfter)
			require.Equal(t, 5*time.Minute, c.FreshUntil.Sub(c.ValidAfter))
			require.Equal(t, 10*time.Minute, c.ValidUntil.Sub(c.ValidAfter))
			require.Len(t, c.Routers, 5)
			last := c.Routers[4]
			require.Equal(t, router{
				Nickname:    "auth0",
				Fingerprint: "F2E2A0A409457EFE10B98336ADDBA4C0B1F2C049",
				Address:     "127.0.0.1",
				ORPort:      43561,
				Flags:       []string{"Authority", "Fast", "Guard", "HSDir", "Running", "Stable", "V2Dir", "Valid"},
			}, last)
			require.Empty(t, c.missing(fiveNodes()))
		})
	}
}

func TestParseConsensusThreeAuthorities(t *testing.T) {
	c, err := parseConsensus(readTestdata(t, "microdesc-consensus-3auth"))
	require.NoError(t, err)
	nodes := []*Node{
		{Role: Authority, Nickname: "auth0", Fingerprint: "0F51903E1ED5CDEA0BA4EE6D865BCD30CB58B107"},
		{Role: Authority, Nickname: "auth1", Fingerprint: "7F4C15AB977F7E3B9AE71092660BF51BD4770A3A"},
		{Role: Authority, Nickname: "auth2", Fingerprint: "0FFF96B49A5D73F5D5643A56E38A06B2A22F2F1C"},
		{Role: Relay, Nickname: "relay0", Fingerprint: "83302D8782049EDF5570D140B0985C5D78572641"},
		{Role: Relay, Nickname: "relay1", Fingerprint: "27D2D3EFFB3CF8CB0AD62D000A191D3D2561295E"},
	}
	require.Empty(t, c.missing(nodes))
	// A relay is not an HSDir (it is not a directory cache), so a node that
	// claims to be an authority with the fingerprint of a relay is reported.
	nodes[3].Role = Authority
	require.Equal(t, []string{"relay0: lacks HSDir"}, c.missing(nodes))
}

func TestParseConsensusIncomplete(t *testing.T) {
	c, err := parseConsensus(readTestdata(t, "microdesc-consensus-incomplete"))
	require.NoError(t, err)
	require.Len(t, c.Routers, 2)
	nodes := []*Node{
		{Role: Authority, Nickname: "auth0", Fingerprint: "F2E2A0A409457EFE10B98336ADDBA4C0B1F2C049"},
		{Role: Relay, Nickname: "relay0", Fingerprint: "A1567236B179835816892E567318BC95FF58DD11"},
		{Role: Relay, Nickname: "relay1", Fingerprint: "C20508CA076AA6C2CA2F90B00DD62919BE6EB10F"},
		{Role: Relay, Nickname: "relay2", Fingerprint: "2A1B86EFB902313A2414D0CF66CE40EB1CB9139A"},
	}
	require.Equal(t, []string{"auth0: absent", "relay2: absent"}, c.missing(nodes))
}

func TestConsensusMissingFlags(t *testing.T) {
	b := string(readTestdata(t, "microdesc-consensus-complete"))
	// relay1 (the second "r" entry) without Stable and Guard.
	i := strings.Index(b, "r relay1 ")
	j := i + strings.Index(b[i:], "\ns ") + 1
	k := j + strings.IndexByte(b[j:], '\n')
	b = b[:j] + "s Fast Running Valid" + b[k:]
	c, err := parseConsensus([]byte(b))
	require.NoError(t, err)
	require.Equal(t, []string{"relay1: lacks Guard Stable"}, c.missing(fiveNodes()))
}

func TestParseConsensusErrors(t *testing.T) {
	good := string(readTestdata(t, "microdesc-consensus-complete"))
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty", "", "no network-status-version"},
		{"version 2", "network-status-version 2\n", "unsupported version"},
		{"vote", strings.Replace(good, "vote-status consensus", "vote-status vote", 1), "vote-status"},
		{"bad time", strings.Replace(good, "valid-after 2026-11-22 08:14:13", "valid-after yesterday", 1), "bad time"},
		{"no fresh-until", strings.Replace(good, "fresh-until", "x-fresh-until", 1), "missing valid-after or fresh-until"},
		{"short r", strings.Replace(good, "r relay2 KhuG77kCMTokFNDPZs5A6xy5E5o 2038-01-01 00:00:00 127.0.0.1 33045 0", "r relay2 KhuG77kCMTokFNDPZs5A6xy5E5o", 1), "malformed r line"},
		{"bad identity", strings.Replace(good, "KhuG77kCMTokFNDPZs5A6xy5E5o", "KhuG77kCMTok", 1), "malformed identity"},
		{"bad port", strings.Replace(good, "127.0.0.1 33045 0", "127.0.0.1 99999 0", 1), "malformed ORPort"},
		{"s first", "network-status-version 3 microdesc\ns Fast\n", "before any"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConsensus([]byte(tc.doc))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func FuzzParseConsensus(f *testing.F) {
	for _, name := range []string{"microdesc-consensus-complete", "ns-consensus-complete", "microdesc-consensus-incomplete"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "tortest", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConsensus(b)
		if err != nil {
			return
		}
		for _, r := range c.Routers {
			if !hexFP.MatchString(r.Fingerprint) {
				t.Fatalf("bad fingerprint %q", r.Fingerprint)
			}
		}
		_ = c.missing(fiveNodes())
	})
}
