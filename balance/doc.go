// Package balance puts several onion services (backends, on any number of
// machines) behind one onion address (the frontend, or master address)
// with Onionbalance, the Tor Project's load balancer for v3 onion
// services. It runs the onionbalance program (Debian package
// onionbalance, 0.2.2, Python) and does no balancing of its own.
//
// # How Onionbalance works
//
// Each backend is an ordinary on-disk onion service of its own tor, made
// an instance of the master address (onion.DirConfig.OnionbalanceMasters,
// or config.HiddenService.SetOnionbalanceInstance with
// config.WriteOnionbalanceConfig for a torrc built offline): it publishes
// its own descriptor and accepts clients that come through the master's.
// The frontend is a tor with no onion service at all plus onionbalance,
// which holds the master key: it fetches the backends' descriptors through
// its tor (HSFETCH), and publishes (HSPOST) a master descriptor listing
// introduction points taken from every live backend (two each). Clients
// fetch the master descriptor, introduce themselves at one of those
// points, and the backend behind it answers. No client traffic passes
// through the frontend, and if a backend dies the clients fall over to the
// introduction points of the others.
//
// [Frontend] runs onionbalance for one master key against a tor this
// program controls, supervises it (its log lines go to a log/slog Logger;
// it is stopped by Close, when the tor's control connection ends, and by
// the kernel when this program dies), reports when the master descriptor
// has been published (HS_DESC UPLOADED events of that tor), and changes
// the set of backends at run time ([Frontend.SetBackends]). The master key
// and the configuration reach onionbalance through pipes: nothing is
// written to disk.
//
// # Timings
//
// Onionbalance 0.2.2 fetches the backends' descriptors when it starts and
// publishes the master descriptor 45 seconds later (INITIAL_CALLBACK_DELAY)
// or on the next new consensus, if its backends' descriptors are fresh
// then. It then fetches the backends' descriptors every 10 minutes, checks
// every 5 minutes whether to republish (on a change of introduction
// points, of HSDirs, or after an hour), and leaves out a backend whose
// descriptor it received more than an hour ago. With its testnet switch
// (--is-testnet), which Frontend sets when the tor has TestingTorNetwork
// 1, these become 20 s, 10 s, 20 s and 20 s: on a private network the
// master address answers 50 s or so after Start.
//
// Its testnet mode also assumes a 20-second voting interval (it derives
// the 8-minute time period from it): a tortest network for a Frontend
// needs VotingInterval: TestnetVotingInterval. And it needs at least
// MinHSDirs (5) HSDirs in its view of the network, which can lack a
// relay's microdescriptor for a while: with fewer it loops forever
// computing where to upload. On a tortest network the authorities are the
// HSDirs, so use 7 authorities. Start refuses a test network with another
// voting interval or fewer than 5 HSDirs ([ErrUnsupportedNetwork]).
//
// A client keeps the master descriptor it has while its introduction
// points answer; it fetches a new one (with new backends) when they all
// fail, when it expires, or after NEWNYM.
//
// # Adding and removing backends
//
// Onionbalance 0.2.2 reads its configuration at start and on SIGHUP, but
// its SIGHUP reload opens a second control connection without closing
// the first, restarts its 45-second start-up schedule inside the signal
// handler, and kills it if the signal comes before its handler is
// installed. SetBackends therefore restarts it with the new list; the
// master descriptor already published keeps working meanwhile, and the
// new one is published within the start-up delay above.
package balance
