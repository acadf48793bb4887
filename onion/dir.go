package onion

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// ErrKeyMismatch is matched when DirConfig.Key differs from the key already
// kept in the service directory.
var ErrKeyMismatch = errors.New("onion: the service directory holds a different key")

// DirConfig configures an onion service kept on disk: a HiddenServiceDir in
// tor's configuration. Tor keeps the service's key in Dir, so the service
// has the same address every time it is published from that directory,
// across restarts of tor and of the program. Ephemeral services
// (ListenConfig) can do the same only if the program stores their Key.
//
// Tor must be able to create, read and write Dir, and tor refuses a
// directory that other users can read. Listen reads the service's key back
// from Dir, so the program must be able to read it too: use a tor running
// as the same user (a launched one), not a system tor running as its own.
type DirConfig struct {
	// Dir is the service directory (made absolute; created with mode 0700
	// when missing).
	Dir string
	// Key, if set, is written into Dir when Dir holds no key yet; if Dir
	// has a different key, Listen fails with ErrKeyMismatch. Without Key,
	// tor generates one the first time.
	Key *Key
	// OnionbalanceMasters, when not empty, makes the service an
	// Onionbalance instance (a backend) of these frontend addresses: tor
	// then also accepts the clients that reach it through a frontend's
	// descriptor. Listen checks the addresses (checksum included, which
	// tor does not check), writes them to ob_config in Dir and sets
	// HiddenServiceOnionBalanceInstance 1. Ephemeral services
	// (ListenConfig) cannot be instances: ADD_ONION has no such option.
	// See package balance for the frontend.
	OnionbalanceMasters []string

	// Ports, Targets, LocalNetwork and LocalListener are as in
	// ListenConfig: the Ports lead to the Listener, the Targets elsewhere.
	Ports         []int
	Targets       []control.OnionPort
	LocalNetwork  string
	LocalListener net.Listener

	// MaxStreams and MaxStreamsCloseCircuit are as in ListenConfig
	// (HiddenServiceMaxStreams, HiddenServiceMaxStreamsCloseCircuit).
	MaxStreams             int
	MaxStreamsCloseCircuit bool
	// ClientAuth, if not nil, lists the clients allowed to connect: the
	// directory's authorized_clients holds exactly these keys afterwards
	// (files of other keys are removed). Nil leaves authorized_clients as
	// it is; an empty, non-nil list lets anyone connect.
	ClientAuth []ClientPublicKey

	// PoW is the proof-of-work defense, on by default where tor supports
	// it (see PoW): HiddenServicePoWDefensesEnabled, tor 0.4.8+ built with
	// the "pow" module.
	PoW PoW
	// IntroDoS, if set, turns on the rate limit at the service's
	// introduction points (see IntroDoS); nil leaves it off, tor's default.
	IntroDoS *IntroDoS
	// IntroPoints is the number of introduction points
	// (HiddenServiceNumIntroductionPoints, MinIntroPoints to
	// MaxIntroPoints; 0 keeps tor's default of 3). More spread the load of
	// introductions under attack.
	IntroPoints int
	// ExportCircuitID makes tor start each connection to the Listener with
	// a PROXY protocol header naming the client's rendezvous circuit
	// (HiddenServiceExportCircuitID haproxy). The Listener reads and
	// strips it: Accept returns *CircuitConn values whose CircuitID can be
	// passed to Listener.CloseCircuit to cut that client off. Targets get
	// the header too.
	ExportCircuitID bool
	// Logger receives notices such as a PoW fallback (slog.Default() when
	// nil).
	Logger *slog.Logger

	// Keep leaves the service in tor's configuration after Close, with
	// ports that lead nowhere once the Listener is closed; use it with
	// Targets. Without Keep, Close removes the service from tor's
	// configuration (its directory and key stay on disk).
	Keep bool

	// Wait, PublishTimeout and Progress are as in ListenConfig.
	Wait           Wait
	PublishTimeout time.Duration
	Progress       func(Progress)
}

// dirClaims holds the service directories that Listeners of this process
// have configured, per control connection, so that two Listeners cannot
// fight over one directory; dirConfigMu serialises the read-modify-write
// of tor's list of on-disk services (SETCONF replaces the whole list).
var (
	dirConfigMu sync.Mutex
	dirClaimsMu sync.Mutex
	dirClaims   = map[dirClaim]bool{}
)

type dirClaim struct {
	conn *control.Conn
	dir  string
}

// Listen configures the on-disk service in the tor at the other end of
// conn (one SETCONF of tor's whole list of on-disk services: any service
// already configured with Dir, such as one saved in the torrc, is
// replaced) and returns a Listener for it. It waits for publication as
// dc.Wait says, like ListenConfig.Listen.
//
// The service is tied to conn like an ephemeral one: if conn ends, Accept
// fails. Close removes the service from tor's configuration unless Keep is
// set. Concurrent Listens of this process are serialised, but another
// controller changing tor's on-disk services at the same moment can undo
// the change (tor offers no atomic append).
func (dc *DirConfig) Listen(ctx context.Context, conn *control.Conn) (_ *Listener, err error) {
	if conn == nil {
		return nil, errors.New("onion: Listen needs a control connection")
	}
	if dc.Dir == "" {
		return nil, errors.New("onion: DirConfig needs a Dir")
	}
	if strings.ContainsAny(dc.Dir, "\x00\r\n") {
		return nil, fmt.Errorf("onion: service directory %q contains a control character", dc.Dir)
	}
	dir, err := filepath.Abs(dc.Dir)
	if err != nil {
		return nil, fmt.Errorf("onion: service directory: %w", err)
	}
	if err := checkCommon(dc.Ports, dc.Targets, dc.MaxStreams, dc.Wait, dc.LocalNetwork); err != nil {
		return nil, err
	}
	if err := dc.PoW.check(); err != nil {
		return nil, err
	}
	if err := dc.IntroDoS.check(); err != nil {
		return nil, err
	}
	if dc.IntroPoints != 0 && (dc.IntroPoints < MinIntroPoints || dc.IntroPoints > MaxIntroPoints) {
		return nil, fmt.Errorf("onion: IntroPoints %d out of range %d-%d", dc.IntroPoints, MinIntroPoints, MaxIntroPoints)
	}
	ports := dc.Ports
	if len(ports) == 0 && len(dc.Targets) == 0 {
		ports = []int{80}
	}

	claim := dirClaim{conn, dir}
	dirClaimsMu.Lock()
	taken := dirClaims[claim]
	dirClaims[claim] = true
	dirClaimsMu.Unlock()
	if taken {
		return nil, fmt.Errorf("%w: a Listener of this program already serves %s", ErrAddressInUse, dir)
	}
	release := func() {
		dirClaimsMu.Lock()
		delete(dirClaims, claim)
		dirClaimsMu.Unlock()
	}

	l := newListener(conn, ports, dc.Targets, dc.Keep)
	l.release = release
	defer func() {
		if err != nil {
			l.shutdown(true)
		}
	}()
	if err := prepareServiceDir(dir, dc.Key, dc.ClientAuth); err != nil {
		return nil, err
	}

	hs := config.HiddenService{Dir: dir, Version: version3}
	if err := setOnionbalance(&hs, dc.OnionbalanceMasters); err != nil {
		return nil, err
	}
	if len(ports) > 0 {
		target, err := l.listenLocal(dc.LocalListener, dc.LocalNetwork)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			hs.Ports = append(hs.Ports, strconv.Itoa(p)+" "+target)
		}
	}
	for _, t := range dc.Targets {
		hs.Ports = append(hs.Ports, strconv.Itoa(t.VirtPort)+" "+t.Target)
	}
	if dc.MaxStreams > 0 {
		hs.Options = append(hs.Options, config.Option{Key: "HiddenServiceMaxStreams", Value: strconv.Itoa(dc.MaxStreams)})
	}
	if dc.MaxStreamsCloseCircuit {
		hs.Options = append(hs.Options, config.Option{Key: "HiddenServiceMaxStreamsCloseCircuit", Value: "1"})
	}
	if dc.IntroPoints != 0 {
		hs.Options = append(hs.Options, config.Option{Key: "HiddenServiceNumIntroductionPoints", Value: strconv.Itoa(dc.IntroPoints)})
	}
	hs.Options = append(hs.Options, dc.IntroDoS.options()...)
	if dc.ExportCircuitID {
		hs.Options = append(hs.Options, config.Option{Key: "HiddenServiceExportCircuitID", Value: "haproxy"})
		l.exportCircuitID = true
	}
	noPoW := hs
	noPoW.Options = slices.Clone(hs.Options)
	hs.Options = append(hs.Options, dc.PoW.options()...)

	var sub *control.Subscription
	if dc.Wait != WaitNone {
		sub, err = conn.Subscribe(ctx, "HS_DESC")
		if err != nil {
			return nil, fmt.Errorf("onion: subscribe to HS_DESC: %w", err)
		}
		defer sub.Close()
	}

	l.remove = func(ctx context.Context) error {
		_, err := setDirService(ctx, conn, dir, nil)
		return err
	}
	maybeApplied, err := setDirService(ctx, conn, dir, &hs)
	l.pow = dc.PoW.on()
	if err != nil && l.pow && !maybeApplied && refusedConfig(err) {
		// An older tor does not know the PoW options; one built without
		// the pow module refuses them (513). Try without PoW: if that
		// works, PoW was the cause.
		var err2 error
		maybeApplied, err2 = setDirService(ctx, conn, dir, &noPoW)
		switch {
		case err2 != nil:
			err = err2
		case dc.PoW.Mode == PoWOn:
			l.created = true // removed by the deferred shutdown
			return nil, fmt.Errorf("%w (tor 0.4.8+ built with the pow module needed): %w", ErrPoWUnsupported, err)
		default:
			logger(dc.Logger).Info("onion: this tor refuses HiddenServicePoWDefensesEnabled (older than 0.4.8, or built without the pow module); publishing without the proof-of-work defense", "dir", dir, "err", err)
			err, l.pow = nil, false
		}
	}
	if err != nil {
		// If ctx ended or the connection failed after the SETCONF went
		// out, tor may have applied it: remove the service again.
		l.created = maybeApplied
		return nil, err
	}
	l.created = true
	l.startWatch()

	// Tor has created the key (or loaded ours) when SETCONF returns.
	k, err := ReadServiceDir(dir)
	if err != nil {
		return nil, fmt.Errorf("onion: key of the on-disk service: %w", err)
	}
	l.id, l.key = k.ServiceID(), k

	if sub != nil {
		if err := waitWithTimeout(ctx, conn, sub, l.id, dc.Wait, dc.PublishTimeout, dc.Progress); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// refusedConfig reports whether tor (or the check against its option
// names) refused a configuration, rather than the connection failing.
func refusedConfig(err error) bool {
	var refused *config.ApplyError
	return errors.As(err, &refused) || errors.Is(err, config.ErrUnknownOption)
}

// prepareServiceDir creates dir (mode 0700) and writes key into it when
// it holds none, checks that a key it holds is key, and writes the
// authorized clients.
func prepareServiceDir(dir string, key *Key, clients []ClientPublicKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("onion: service directory: %w", err)
	}
	if key != nil {
		have, err := ReadServiceDir(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := WriteServiceDir(dir, key); err != nil {
				return fmt.Errorf("onion: write the key: %w", err)
			}
		case err != nil:
			return fmt.Errorf("onion: service directory: %w", err)
		case !have.Equal(key):
			return fmt.Errorf("%w: %s is %s, not %s", ErrKeyMismatch, dir, have.Hostname(), key.Hostname())
		}
	}
	if clients == nil {
		return nil
	}
	authDir := filepath.Join(dir, "authorized_clients")
	if err := os.MkdirAll(authDir, 0o700); err != nil {
		return fmt.Errorf("onion: authorized clients: %w", err)
	}
	keep := map[string]bool{}
	for _, c := range clients {
		// Base32 names are letters and digits, as tor wants.
		name := strings.ToLower(c.String()[:16])
		keep[name+".auth"] = true
		if err := c.WriteAuthorizedClient(dir, name); err != nil {
			return fmt.Errorf("onion: authorized clients: %w", err)
		}
	}
	entries, err := os.ReadDir(authDir)
	if err != nil {
		return fmt.Errorf("onion: authorized clients: %w", err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".auth") && !keep[e.Name()] {
			if err := os.Remove(filepath.Join(authDir, e.Name())); err != nil {
				return fmt.Errorf("onion: authorized clients: %w", err)
			}
		}
	}
	return nil
}

// setDirService replaces the on-disk service with directory dir in tor's
// configuration by hs, or removes it when hs is nil, with one SETCONF of
// the whole list. On error, maybeApplied says whether tor may have applied
// the SETCONF anyway (it was sent, but the reply was not read).
func setDirService(ctx context.Context, conn *control.Conn, dir string, hs *config.HiddenService) (maybeApplied bool, err error) {
	dirConfigMu.Lock()
	defer dirConfigMu.Unlock()
	tc, err := config.Load(ctx, conn, &config.LoadOptions{NoSync: true})
	if err != nil {
		return false, fmt.Errorf("onion: read tor's on-disk services: %w", err)
	}
	defer tc.Close()
	removed, err := tc.RemoveHiddenService(dir)
	if err != nil {
		return false, fmt.Errorf("onion: %w", err)
	}
	if hs != nil {
		if err := tc.AddHiddenService(*hs); err != nil {
			return false, fmt.Errorf("onion: %w", err)
		}
	} else if !removed {
		return false, nil // someone else removed it already
	}
	if err := tc.Apply(ctx); err != nil {
		var refused *config.ApplyError
		return !errors.As(err, &refused), fmt.Errorf("onion: configure the on-disk service %s: %w", dir, err)
	}
	return false, nil
}
