package tortest

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gotorcon/tor/config"
)

// loopback is the only address any tortest node binds or advertises.
const loopback = "127.0.0.1"

// dirAuthorityLine is the DirAuthority torrc value that names authority a.
func dirAuthorityLine(a *Node) string {
	return fmt.Sprintf("%s orport=%d no-v2 v3ident=%s %s:%d %s",
		a.Nickname, a.ORPort, a.V3Ident, loopback, a.DirPort, a.Fingerprint)
}

// joinTorrc is what any tor needs to join the network: the testing
// switch, the authorities, and no GeoIP parsing (seconds of CPU per tor).
func joinTorrc(auths []*Node) *config.Torrc {
	var t config.Torrc
	t.Add("TestingTorNetwork", "1")
	for _, a := range auths {
		t.Add("DirAuthority", dirAuthorityLine(a))
	}
	t.Add("GeoIPFile", os.DevNull)
	t.Add("GeoIPv6File", os.DevNull)
	return &t
}

// nodeTorrc writes the torrc of one authority or relay. votingOffset is
// TestingV3AuthVotingStartOffset, computed just before launch.
func nodeTorrc(n *Node, auths []*Node, vi time.Duration, votingOffset int) *config.Torrc {
	t := joinTorrc(auths)
	t.Add("DataDirectory", n.DataDir)
	t.Add("Nickname", n.Nickname)
	t.Add("Log", "notice stdout")
	t.Add("LogTimeGranularity", "1")
	t.Add("SafeLogging", "0") // every address is 127.0.0.1
	t.Add("ShutdownWaitLength", "0")
	t.Add("ClientUseIPv6", "0")
	t.Add("Address", loopback)
	t.Add("ORPort", fmt.Sprintf("%s:%d", loopback, n.ORPort))
	t.Add("SocksPort", "0")
	t.Add("ContactInfo", n.Nickname+"@test.invalid")
	if n.Exit {
		// Loopback only. TestingTorNetwork already sets
		// ExitPolicyRejectPrivate 0 (and clients' ClientRejectInternalAddresses
		// 0); ExitPolicyRejectLocalInterfaces is 0 by default.
		t.Add("ExitRelay", "1")
		t.Add("ExitPolicy", "accept "+loopback+":*")
		t.Add("ExitPolicy", "reject *:*")
		t.Add("ExitPolicyRejectPrivate", "0")
		// An exit refuses streams from relays it does not know, and relays
		// get the first consensus seconds after the clients (it comes from
		// the authority, after 404s and backoff): the exit then ends the
		// first streams with MISC. The network is loopback-only; accept.
		t.Add("RefuseUnknownExits", "0")
	} else {
		t.Add("ExitRelay", "0")
		t.Add("ExitPolicy", "reject *:*")
	}
	t.Add("ServerDNSResolvConfFile", os.DevNull)
	t.Add("ServerDNSDetectHijacking", "0")
	t.Add("ServerDNSTestAddresses", "")
	t.Add("AssumeReachable", "1")
	if n.Role != Authority {
		// Clients then fetch directory documents only from authorities, which
		// have them from the first consensus on; relay caches 404 for up to
		// 10 s after it and double the bootstrap time.
		t.Add("DirCache", "0")
		return t
	}
	var hsdirs []string
	for _, a := range auths {
		hsdirs = append(hsdirs, "$"+a.Fingerprint)
	}
	secs := strconv.Itoa(int(vi / time.Second))
	t.Add("DirPort", fmt.Sprintf("%s:%d", loopback, n.DirPort))
	t.Add("AuthoritativeDirectory", "1")
	t.Add("V3AuthoritativeDirectory", "1")
	t.Add("TestingDirAuthVoteGuard", "*")
	// Only directory caches can be HSDirs, and only authorities are caches.
	t.Add("TestingDirAuthVoteHSDir", strings.Join(hsdirs, ","))
	t.Add("AuthDirVoteStableGuaranteeMinUptime", "0")
	t.Add("AuthDirFastGuarantee", "1")
	t.Add("V3AuthNIntervalsValid", "2")
	// Initial interval = regular interval: the onion-service time period is
	// 24 voting intervals of the consensus in use, so a change would rotate
	// every blinded key after the first consensus.
	t.Add("TestingV3AuthInitialVotingInterval", secs)
	t.Add("TestingV3AuthInitialVoteDelay", "2")
	t.Add("TestingV3AuthInitialDistDelay", "2")
	t.Add("V3AuthVotingInterval", secs)
	t.Add("TestingV3AuthVotingStartOffset", strconv.Itoa(votingOffset))
	t.Add("V3AuthVoteDelay", "2")
	t.Add("V3AuthDistDelay", "2")
	return t
}

// voteDelays is V3AuthVoteDelay + V3AuthDistDelay as set by nodeTorrc:
// authorities vote that long before a consensus becomes valid.
const voteDelays = 4 * time.Second

// firstValidAfter returns the valid-after time of the first consensus for
// a launch at now with the given lead, and the voting offset that puts it
// there: the first whole second at least lead+0.5 s after now, which must
// be on the voting grid (offset from midnight modulo the interval).
func firstValidAfter(now time.Time, lead, vi time.Duration) (time.Time, int) {
	target := now.Add(lead + 500*time.Millisecond)
	secs := int64(math.Ceil(float64(target.UnixNano()) / 1e9))
	va := time.Unix(secs, 0).UTC()
	// Tor's voting grid restarts at every UTC midnight.
	sinceMidnight := secs % 86400
	return va, int(sinceMidnight % int64(vi/time.Second))
}
