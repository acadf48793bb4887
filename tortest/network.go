package tortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/process"
)

// Role says what a node of the network does.
type Role int

const (
	// Authority is a v3 directory authority. It also serves directory
	// documents, is an HSDir, and relays traffic.
	Authority Role = iota + 1
	// Relay is a non-exit relay that is not a directory cache.
	Relay
)

// String returns "authority" or "relay".
func (r Role) String() string {
	switch r {
	case Authority:
		return "authority"
	case Relay:
		return "relay"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Node describes one tor process of a Network.
type Node struct {
	Role        Role
	Nickname    string // auth0, auth1, ..., relay0, relay1, ...
	Fingerprint string // RSA identity fingerprint, 40 upper-case hex digits
	V3Ident     string // v3 authority identity fingerprint (authorities only)
	ORPort      int    // on 127.0.0.1
	DirPort     int    // on 127.0.0.1 (authorities only)
	DataDir     string // removed by Network.Close
	// Exit is set on the relays whose exit policy accepts 127.0.0.1 (every
	// port) and rejects everything else (see Options.Exits).
	Exit bool
	Pid  int // process id while the node runs

	proc torProcess
	log  *logBuffer
}

// requiredFlags lists the consensus flags a node must carry before clients
// may join: onion-service circuits need Guard, Stable and Fast relays, and
// the authorities are the network's HSDirs.
func (n *Node) requiredFlags() []string {
	f := []string{"Fast", "Guard", "Running", "Stable", "Valid"}
	if n.Role == Authority {
		f = append(f, "HSDir")
	}
	return f
}

// Options configures a Network. The zero value gives the default network:
// one directory authority and four relays.
type Options struct {
	// Authorities is the number of directory authorities (default 1).
	Authorities int
	// Relays is the number of relays that are not authorities (0 means
	// the default, 4).
	// An onion-service circuit needs four distinct relays, so Authorities +
	// Relays must be at least 4 for onion services (5 leaves slack for path
	// selection).
	Relays int
	// Exits is how many of the relays are exits (0 means the default, 1; a
	// negative number means none). An exit's policy accepts 127.0.0.1 on
	// every port and rejects every other address, so a client reaches a
	// TCP server on loopback "through Tor" the way it would reach a web
	// site. The consensus summarises exit policies for public addresses
	// only, so tor never picks such an exit on its own: a controller
	// chooses it (EXTENDCIRCUIT and ATTACHSTREAM, see package torstate).
	// The exits are the last relays (relay3 in the default network).
	Exits int

	// TorPath is the tor binary; when empty, process.Find looks at
	// $GOTORCON_TOR, PATH and the usual install locations.
	TorPath string
	// GencertPath is the tor-gencert binary; when empty, the one next to
	// tor, else "tor-gencert" in PATH.
	GencertPath string

	// Dir is where the network's directory (gotorcon-tortest-*) is made
	// (default os.TempDir()). Start removes the directories there of
	// networks whose program died without Close.
	Dir string

	// VotingInterval is the authorities' voting interval (default 5 min,
	// minimum 10 s). In a testing network the onion-service time period is
	// 24 voting intervals, so the default keeps descriptors and blinded keys
	// stable for 2 hours; short intervals are only useful to test rotation.
	// The first consensus comes Lead after launch whatever the interval.
	VotingInterval time.Duration

	// Lead is the time from launching the tor processes to the first
	// consensus (default 6.5 s). Relays must have uploaded their descriptors
	// 4 s before it, so a shorter lead risks a first consensus without them;
	// Start then restarts the network with 2 s more.
	Lead time.Duration

	// Logger receives progress messages (default: discarded).
	Logger *slog.Logger

	// LogOutput, if set, receives every tor log line as it is written,
	// prefixed with the node's nickname. The lines are kept in memory
	// either way (see Network.WriteLogs).
	LogOutput io.Writer

	// For tests: launch attempts (default maxAttempts) and how late the
	// first consensus may be (default consensusGrace).
	maxAttempts    int
	consensusGrace time.Duration
	pickPorts      func(n int) ([]int, error) // default freePorts
}

const (
	defaultVotingInterval = 5 * time.Minute
	defaultLead           = 6500 * time.Millisecond
	// consensusGrace is how long after the expected first consensus an
	// authority may still be late (slow machine) before Start gives up on
	// it. Tor publishes at valid-after, seconds late at worst; an authority
	// that started after its first voting time votes only an interval later.
	consensusGrace = 15 * time.Second
	// maxAttempts bounds the restarts after an incomplete first consensus or
	// a port taken by another program.
	maxAttempts = 3
	// leadStep is the extra lead of each restart.
	leadStep = 2 * time.Second
)

func (o *Options) setDefaults() error {
	if o.Authorities == 0 {
		o.Authorities = 1
	}
	if o.Relays == 0 {
		o.Relays = 4
	}
	if o.Exits == 0 {
		o.Exits = 1
	}
	if o.Exits < 0 {
		o.Exits = 0
	}
	if o.Exits > o.Relays {
		return fmt.Errorf("tortest: Exits %d is more than Relays %d", o.Exits, o.Relays)
	}
	if o.Authorities < 0 || o.Relays < 0 {
		return fmt.Errorf("tortest: negative node count (Authorities %d, Relays %d)", o.Authorities, o.Relays)
	}
	if o.VotingInterval == 0 {
		o.VotingInterval = defaultVotingInterval
	}
	if o.VotingInterval < 10*time.Second || o.VotingInterval%time.Second != 0 {
		return fmt.Errorf("tortest: VotingInterval %v must be a whole number of seconds, at least 10 s", o.VotingInterval)
	}
	if o.Lead == 0 {
		o.Lead = defaultLead
	}
	if o.Lead < 0 {
		return fmt.Errorf("tortest: negative Lead %v", o.Lead)
	}
	if o.Lead+voteDelays+leadStep*maxAttempts > o.VotingInterval && o.VotingInterval > 30*time.Second {
		// keep restarts meaningful; short intervals just wait for the next vote
		o.Lead = o.VotingInterval - voteDelays - leadStep*maxAttempts
	}
	var err error
	if o.TorPath, err = process.Find(o.TorPath); err != nil {
		return fmt.Errorf("tortest: %w (install the tor package)", err)
	}
	if o.GencertPath == "" {
		o.GencertPath = "tor-gencert"
		if next := filepath.Join(filepath.Dir(o.TorPath), "tor-gencert"+filepath.Ext(o.TorPath)); fileExists(next) {
			o.GencertPath = next
		}
	}
	if o.GencertPath, err = exec.LookPath(o.GencertPath); err != nil {
		return fmt.Errorf("tortest: tor-gencert not found (it comes with the tor package): %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = maxAttempts
	}
	if o.consensusGrace == 0 {
		o.consensusGrace = consensusGrace
	}
	if o.pickPorts == nil {
		o.pickPorts = freePorts
	}
	return nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// Network is a private Tor network on 127.0.0.1: directory authorities and
// relays, each a tor process in its own temporary directory. Tor clients
// join it with the options of ClientTorrc. Close stops it.
type Network struct {
	opts  Options
	dir   string
	nodes []*Node
	auths []*Node

	teeMu sync.Mutex

	lock    *startLock // held from before launch until the first vote
	dirLock *dirLock   // held while the network lives

	started   time.Time
	ready     time.Duration
	attempts  int
	consensus *consensus

	closeOnce sync.Once
	closeErr  error
}

// Start starts a private Tor network and returns once every authority
// serves a consensus that lists every node with the flags onion services
// need (typically 8 s). At most two networks launch at once on a machine
// (lock files in the temp directory): a third waits for a slot, about 4 s,
// until one of the launching networks' authorities have voted. If ctx
// ends first, a tor exits, or an authority does not vote in time, Start
// stops what it started and returns an error that quotes the relevant tor
// log lines.
func Start(ctx context.Context, opts Options) (*Network, error) {
	n, err := start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// start is Start, but on failure it also returns the closed network so the
// test helpers can print every node's log.
func start(ctx context.Context, opts Options) (*Network, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tortest: %w", err)
	}
	n := &Network{opts: opts, started: time.Now()}
	lg := opts.Logger

	sweepStale(opts.Dir, lg)
	var err error
	n.dir, err = os.MkdirTemp(opts.Dir, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("tortest: %w", err)
	}
	if n.dirLock, err = lockDir(n.dir); err != nil {
		os.RemoveAll(n.dir)
		return nil, err
	}
	lead := opts.Lead
	for n.attempts = 1; ; n.attempts++ {
		// A launch slot, held until the authorities have voted (waitReady).
		t0 := time.Now()
		if n.lock, err = acquireStartLock(ctx); err != nil {
			n.Close()
			return n, err
		}
		if waited := time.Since(t0); waited > 100*time.Millisecond {
			lg.Info("tortest: waited for other networks' start-up", "wait", waited.Round(time.Millisecond))
		}
		err = n.launch(ctx, lead)
		n.lock.release()
		if err == nil {
			n.ready = time.Since(n.started)
			lg.Info("tortest: network ready", "dir", n.dir, "ready", n.ready.Round(time.Millisecond), "attempts", n.attempts)
			return n, nil
		}
		var retry *retryError
		if !errors.As(err, &retry) || n.attempts >= opts.maxAttempts || ctx.Err() != nil {
			n.Close()
			return n, err
		}
		lg.Warn("tortest: restarting the network", "reason", retry.reason, "attempt", n.attempts)
		n.stopAll()
		if retry.moreLead {
			lead += leadStep
		}
	}
}

// retryError is a start-up failure that a fresh attempt can fix.
type retryError struct {
	reason   string
	moreLead bool
	err      error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// launch makes one attempt: fresh directories, ports and keys, then all
// processes at once, then the wait for a complete consensus.
func (n *Network) launch(ctx context.Context, lead time.Duration) error {
	o := n.opts
	lg := o.Logger
	// Fresh nodes and directories on every attempt.
	for _, nd := range n.nodes {
		if err := os.RemoveAll(nd.DataDir); err != nil {
			return fmt.Errorf("tortest: %w", err)
		}
	}
	n.nodes, n.auths = nil, nil
	ports, err := o.pickPorts(2*o.Authorities + o.Relays)
	if err != nil {
		return err
	}
	for i := 0; i < o.Authorities; i++ {
		nd := &Node{Role: Authority, Nickname: fmt.Sprintf("auth%d", i), ORPort: ports[0], DirPort: ports[1]}
		ports = ports[2:]
		n.auths = append(n.auths, nd)
		n.nodes = append(n.nodes, nd)
	}
	for i := 0; i < o.Relays; i++ {
		nd := &Node{Role: Relay, Nickname: fmt.Sprintf("relay%d", i), ORPort: ports[0], Exit: i >= o.Relays-o.Exits}
		ports = ports[1:]
		n.nodes = append(n.nodes, nd)
	}
	prefixLen := 0
	for _, nd := range n.nodes {
		prefixLen = max(prefixLen, len(nd.Nickname))
	}
	for _, nd := range n.nodes {
		nd.DataDir = filepath.Join(n.dir, nd.Nickname)
		nd.log = newLogBuffer(fmt.Sprintf("%-*s", prefixLen, nd.Nickname), o.LogOutput, &n.teeMu)
	}

	t0 := time.Now()
	if err := n.makeKeys(ctx); err != nil {
		return err
	}
	lg.Debug("tortest: keys made", "took", time.Since(t0).Round(time.Millisecond))

	// Launch everything at once, with the voting schedule computed now.
	launchAt := time.Now()
	firstVA, offset := firstValidAfter(launchAt, lead, o.VotingInterval)
	var wg sync.WaitGroup
	errs := make([]error, len(n.nodes))
	for i, nd := range n.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.startNode(ctx, nd, nodeTorrc(nd, n.auths, o.VotingInterval, offset))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if n.portTaken() {
			return &retryError{reason: "a port was taken by another program", err: err}
		}
		return err
	}
	lg.Debug("tortest: processes started", "took", time.Since(launchAt).Round(time.Millisecond), "first consensus", firstVA.Format(time.TimeOnly))
	return n.waitReady(ctx, launchAt, firstVA)
}

// makeKeys installs every node's keys: the shipped ones where there are
// (see installEmbeddedKeys), else new ones (authority keys with
// tor-gencert, relay identities with tor --list-fingerprint), in parallel,
// at most one job per CPU.
func (n *Network) makeKeys(ctx context.Context) error {
	type job func() error
	var jobs []job
	for _, nd := range n.nodes {
		jobs = append(jobs, func() error {
			if ok, err := installEmbeddedKeys(ctx, n.opts.GencertPath, nd); ok || err != nil {
				return err
			}
			var err error
			if nd.Role == Authority {
				nd.V3Ident, err = makeAuthorityKeys(ctx, n.opts.GencertPath, nd.DataDir, fmt.Sprintf("%s:%d", loopback, nd.DirPort))
				if err != nil {
					return err
				}
			}
			nd.Fingerprint, err = makeRelayKeys(ctx, n.opts.TorPath, nd.DataDir, nd.Nickname)
			return err
		})
	}
	sem := make(chan struct{}, max(runtime.NumCPU(), 2))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = j()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Network) startNode(ctx context.Context, nd *Node, torrc *config.Torrc) error {
	p, err := startTor(ctx, n.opts.TorPath, torrc, nd.DataDir, nd.log)
	if err != nil {
		return fmt.Errorf("tortest: starting %s: %w\n%s", nd.Nickname, err, nd.log.Tail(15))
	}
	nd.proc = p
	nd.Pid = p.Pid()
	return nil
}

// portTaken reports whether a tor failed because its port was in use.
func (n *Network) portTaken() bool {
	for _, nd := range n.nodes {
		if nd.log != nil && nd.log.Contains("Address already in use") {
			return true
		}
	}
	return false
}

// pollInterval is how often waitReady looks at the authorities' consensus.
const pollInterval = 100 * time.Millisecond

// waitReady waits until every authority has a consensus listing every node
// with its required flags.
func (n *Network) waitReady(ctx context.Context, launchAt, firstVA time.Time) error {
	lg := n.opts.Logger
	vi := n.opts.VotingInterval
	grace := n.opts.consensusGrace
	// With a long interval, a missed first vote is worth a restart; with a
	// short one, the next vote comes soon enough.
	restartIfLate := vi > 30*time.Second
	deadline := firstVA.Add(grace)
	if !restartIfLate {
		deadline = deadline.Add(vi)
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastIncomplete time.Time // valid-after of the last incomplete consensus logged
	// Another network may launch once the authorities have voted: the
	// relays' start-up and descriptor uploads, which must not be starved of
	// CPU, are over by then.
	unlockAt := firstVA.Add(-voteDelays + time.Second)
	for {
		if time.Now().After(unlockAt) {
			n.lock.release()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tortest: waiting for the first consensus: %w", ctx.Err())
		case <-tick.C:
		}
		for _, nd := range n.nodes {
			select {
			case <-nd.proc.Done():
				err := &retryError{reason: nd.Nickname + " exited", err: fmt.Errorf("tortest: %s %s exited during start-up: %v\n%s", nd.Role, nd.Nickname, nd.proc.Err(), nd.log.Tail(20))}
				if n.portTaken() {
					return err
				}
				return err.err
			default:
			}
		}
		first := n.auths[0]
		c, err := readConsensus(first.DataDir)
		if errors.Is(err, errNoConsensus) {
			if time.Now().After(deadline) {
				err := fmt.Errorf("tortest: authority %s did not publish a consensus within %v of launch (expected %v after launch); last log lines:\n%s",
					first.Nickname, time.Since(launchAt).Round(time.Second), firstVA.Sub(launchAt).Round(100*time.Millisecond), first.log.Tail(25))
				if restartIfLate {
					return &retryError{reason: "no consensus in time (authority missed its first vote?)", moreLead: true, err: err}
				}
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("tortest: authority %s: %w", first.Nickname, err)
		}
		if miss := c.missing(n.nodes); len(miss) > 0 {
			if c.ValidAfter.Equal(lastIncomplete) {
				if time.Now().After(deadline) {
					return fmt.Errorf("tortest: the consensus of %s valid after %s is incomplete (%s) and no newer one came; last log lines:\n%s",
						first.Nickname, c.ValidAfter.Format(time.TimeOnly), strings.Join(miss, "; "), first.log.Tail(25))
				}
				continue
			}
			lastIncomplete = c.ValidAfter
			reason := fmt.Sprintf("consensus valid after %s is incomplete: %s", c.ValidAfter.Format(time.TimeOnly), strings.Join(miss, "; "))
			if vi > 30*time.Second {
				return &retryError{reason: reason, moreLead: true, err: errors.New("tortest: " + reason)}
			}
			lg.Info("tortest: waiting for the next consensus", "reason", reason)
			deadline = c.ValidAfter.Add(vi + grace)
			continue
		}
		// auth0 is complete; every other authority must publish it too (they
		// do so within a second or so of each other).
		done := true
		for _, a := range n.auths[1:] {
			ca, err := readConsensus(a.DataDir)
			if err != nil || ca.ValidAfter.Before(c.ValidAfter) || len(ca.missing(n.nodes)) > 0 {
				done = false
				if time.Now().After(c.ValidAfter.Add(grace)) {
					return fmt.Errorf("tortest: authority %s did not publish the consensus valid after %s within %v; last log lines:\n%s",
						a.Nickname, c.ValidAfter.Format(time.TimeOnly), grace, a.log.Tail(25))
				}
				break
			}
		}
		if done {
			n.consensus = c
			lg.Debug("tortest: consensus complete", "valid-after", c.ValidAfter.Format(time.TimeOnly), "after launch", time.Since(launchAt).Round(time.Millisecond))
			return nil
		}
	}
}

// readConsensus reads the microdescriptor consensus an authority serves.
func readConsensus(dataDir string) (*consensus, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "cached-microdesc-consensus"))
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0) {
		return nil, errNoConsensus
	}
	if err != nil {
		return nil, err
	}
	return parseConsensus(b)
}

// ClientTorrc returns the options a tor needs to join the network: the
// DirAuthority lines, TestingTorNetwork 1, and GeoIPFile/GeoIPv6File
// /dev/null (parsing GeoIP costs seconds of CPU per tor). Add a
// DataDirectory, SocksPort and ControlPort of your own. Each call returns a
// new Torrc the caller may modify.
func (n *Network) ClientTorrc() *config.Torrc { return joinTorrc(n.auths) }

// DirAuthorities returns the DirAuthority values (torrc lines without the
// key) that name the network's authorities.
func (n *Network) DirAuthorities() []string {
	var out []string
	for _, a := range n.auths {
		out = append(out, dirAuthorityLine(a))
	}
	return out
}

// Exits returns the relays that are exits (see Options.Exits).
func (n *Network) Exits() []Node {
	var out []Node
	for _, nd := range n.Nodes() {
		if nd.Exit {
			out = append(out, nd)
		}
	}
	return out
}

// Nodes returns a description of every authority and relay.
func (n *Network) Nodes() []Node {
	out := make([]Node, len(n.nodes))
	for i, nd := range n.nodes {
		out[i] = *nd
		out[i].proc, out[i].log = nil, nil
	}
	return out
}

// Dir returns the network's temporary directory (every node's
// DataDirectory is inside it). Close removes it.
func (n *Network) Dir() string { return n.dir }

// StartupTime returns how long Start took, from the call to the complete
// consensus, and how many launch attempts it needed.
func (n *Network) StartupTime() (time.Duration, int) { return n.ready, n.attempts }

// WriteLogs writes every node's tor log (the last 5000 lines of each), one
// node after another under a header line. The logs stay available after
// Close.
func (n *Network) WriteLogs(w io.Writer) error {
	for _, nd := range n.nodes {
		if nd.log == nil {
			continue
		}
		hdr := fmt.Sprintf("==== %s %s (pid %d, ORPort %d", nd.Role, nd.Nickname, nd.Pid, nd.ORPort)
		if nd.DirPort != 0 {
			hdr += fmt.Sprintf(", DirPort %d", nd.DirPort)
		}
		hdr += ") ====\n"
		if d := nd.log.Dropped(); d > 0 {
			hdr += fmt.Sprintf("(%d older lines dropped)\n", d)
		}
		if _, err := io.WriteString(w, hdr); err != nil {
			return err
		}
		for _, l := range nd.log.Lines() {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// stopAll stops every running node in parallel and waits for them.
func (n *Network) stopAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(n.nodes))
	for i, nd := range n.nodes {
		if nd.proc == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			defer func() {
				n.opts.Logger.Debug("tortest: node stopped", "node", nd.Nickname, "took", time.Since(t0).Round(time.Millisecond))
			}()
			if err := nd.proc.Close(); err != nil {
				errs[i] = fmt.Errorf("tortest: stopping %s: %w", nd.Nickname, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close kills every tor process (their state is thrown away; it takes
// milliseconds) and removes the network's directory. It returns the first problem met but
// always does all of it. Calling Close again returns the same result.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		err := n.stopAll()
		if n.dir != "" {
			err = errors.Join(err, os.RemoveAll(n.dir))
		}
		n.dirLock.release()
		n.closeErr = err
	})
	return n.closeErr
}
