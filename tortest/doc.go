// Package tortest starts private Tor networks on 127.0.0.1, so that Tor
// clients and onion services can be tested end to end with no internet,
// the way net/http/httptest starts HTTP servers.
//
// A Network is one directory authority and four relays by default (see
// Options), each a tor process with its own temporary directory, talking
// only to each other on loopback. Start returns once every authority
// serves a consensus that lists every node with the flags onion services
// need (Guard, Stable, Fast, and HSDir on the authorities); that takes about
// 8 s. A tor joins the network with the options of Network.ClientTorrc
// (for example as launch.Options.Network) and bootstraps to 100 % in about
// 1 s; an onion service it publishes is reachable through its SOCKS port
// about 1.7 s after ADD_ONION. Close stops every process and removes every
// directory.
//
// The last relay is an exit (see Options.Exits) whose policy accepts
// 127.0.0.1 and nothing else, so a client reaches a TCP server on loopback
// through Tor. The consensus summarises exit policies for public addresses
// only, so tor does not pick that exit on its own: build a circuit to it
// and attach streams with package torstate (BuildCircuit, Dialer).
//
//	network, err := tortest.Start(ctx, tortest.Options{})
//	if err != nil { ... }
//	defer network.Close()
//	tor, err := launch.Private(ctx, launch.Options{Network: network.ClientTorrc()})
//
// # In tests
//
// NewNetwork starts a network for one test and stops it in t.Cleanup,
// printing every node's log if the test failed. To pay the start-up once
// per test binary, call Main from TestMain and Shared in the tests:
//
//	func TestMain(m *testing.M) { tortest.Main(m, tortest.Options{}) }
//
//	func TestOnion(t *testing.T) {
//		network := tortest.Shared(t)
//		...
//	}
//
// go test runs the test binaries of several packages at once: at most two
// networks launch at the same time on a machine (more would starve the
// relays of CPU on a small machine); the others wait a few seconds for a
// slot. Create fresh onion services in each test rather than sharing one.
//
// # How it is made fast and reliable
//
// The nodes run with TestingTorNetwork 1 and without GeoIP files, relays
// are not directory caches (clients then fetch everything from the
// authorities, which have it from the first consensus on), and the
// authorities give every relay the Guard, Stable and Fast flags at once.
// The voting schedule is offset so that the first consensus comes Lead
// (6.5 s) after launch, when every relay has uploaded its descriptor; if it
// does not list every node, or does not come, the network restarts with
// more lead. The voting interval is 5 minutes, so an onion service's time
// period (24 intervals in a testing network) lasts 2 hours and tests do not
// cross a descriptor rotation.
//
// Node keys are pre-generated and shipped with the package, like the
// certificate of httptest: they guard nothing (every node listens on
// loopback only and lives for one test) and save seconds of RSA key
// generation at each start. Only the authority certificate, which embeds
// the DirPort, is signed at each start with tor-gencert. tor and tor-gencert
// (from the tor package of most distributions) must be installed.
package tortest
