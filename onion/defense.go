package onion

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// PoWMode says whether an onion service uses tor's proof-of-work defense.
type PoWMode int

const (
	// PoWAuto, the default, turns the defense on when tor supports it. On
	// a tor that does not (older than 0.4.9 for ephemeral services, older
	// than 0.4.8 or built without the "pow" module for on-disk ones) the
	// service is published without it and a notice is logged.
	PoWAuto PoWMode = iota
	// PoWOn turns the defense on, and Listen fails with an error matching
	// ErrPoWUnsupported when tor cannot.
	PoWOn
	// PoWOff leaves the defense off.
	PoWOff
)

// ErrPoWUnsupported is matched when PoWOn was asked of a tor that cannot
// run the proof-of-work defense.
var ErrPoWUnsupported = errors.New("onion: this tor does not support the proof-of-work defense")

// PoW configures the proof-of-work defense of an onion service (tor
// 0.4.8+, proposal 327). While the service is not under attack it costs
// nothing: tor suggests an effort of 0 in the descriptor and clients solve
// no puzzle. When introduction requests arrive faster than the service
// handles them, tor queues them by the effort their client spent and
// raises the suggested effort, so that a flood of cheap requests no longer
// crowds out real clients. Clients without PoW support (tor < 0.4.8) can
// still connect, at the lowest priority.
//
// The zero value turns the defense on where tor supports it: the DoS
// attacks seen on onion services in the wild are cheap to run and
// expensive to suffer, and the projects that embed tor (LND, Bitcoin Core,
// SecureDrop, Haveno) turn PoW on for that reason. Set Mode to PoWOff to
// opt out.
type PoW struct {
	// Mode is PoWAuto (default), PoWOn or PoWOff.
	Mode PoWMode
	// QueueRate is how many queued introduction requests the service
	// serves per second, and QueueBurst how many at once; 0 keeps tor's
	// defaults (250 and 2500). Lower values raise the suggested effort
	// sooner under attack. QueueBurst must not be below QueueRate.
	QueueRate, QueueBurst int
}

func (p PoW) check() error {
	switch p.Mode {
	case PoWAuto, PoWOn, PoWOff:
	default:
		return fmt.Errorf("onion: unknown PoW mode %d", p.Mode)
	}
	if p.Mode == PoWOff && (p.QueueRate != 0 || p.QueueBurst != 0) {
		return errors.New("onion: PoW queue rate and burst given with PoWOff")
	}
	// Tor refuses a burst below the rate for on-disk services, and for
	// ephemeral ones silently runs the queue without a rate limit.
	return checkRateBurst("PoW queue", p.QueueRate, p.QueueBurst, 250, 2500)
}

// checkRateBurst checks a token bucket's rate and burst against tor's
// limits for the torrc options (ADD_ONION takes up to 2^32-1): both in
// 0..2^31-1, where 0 means tor's default, and the burst not below the rate.
func checkRateBurst(what string, rate, burst, defRate, defBurst int) error {
	if rate < 0 || rate > math.MaxInt32 || burst < 0 || burst > math.MaxInt32 {
		return fmt.Errorf("onion: %s rate %d or burst %d out of range 0-%d", what, rate, burst, math.MaxInt32)
	}
	if rate == 0 {
		rate = defRate
	}
	if burst == 0 {
		burst = defBurst
	}
	if burst < rate {
		return fmt.Errorf("onion: %s burst %d below the rate %d", what, burst, rate)
	}
	return nil
}

// on reports whether the defense is asked for.
func (p PoW) on() bool { return p.Mode != PoWOff }

// request returns the ADD_ONION arguments (nil when off: tor's default).
func (p PoW) request() *control.OnionPoW {
	if !p.on() {
		return nil
	}
	return &control.OnionPoW{Enabled: true, QueueRate: int64(p.QueueRate), QueueBurst: int64(p.QueueBurst)}
}

// options returns the HiddenService* options.
func (p PoW) options() []config.Option {
	if !p.on() {
		return nil
	}
	o := []config.Option{{Key: "HiddenServicePoWDefensesEnabled", Value: "1"}}
	if p.QueueRate > 0 {
		o = append(o, config.Option{Key: "HiddenServicePoWQueueRate", Value: strconv.Itoa(p.QueueRate)})
	}
	if p.QueueBurst > 0 {
		o = append(o, config.Option{Key: "HiddenServicePoWQueueBurst", Value: strconv.Itoa(p.QueueBurst)})
	}
	return o
}

// IntroDoS configures the DoS defense that the introduction points of an
// on-disk service apply (HiddenServiceEnableIntroDoSDefense): each one
// relays at most Rate introductions per second, with bursts of Burst, and
// drops the rest. It protects the service's CPU, but the dropped requests
// include real clients' and, with PoW, the high-effort ones that PoW would
// have served first; so it is off by default. Tor 0.4.9 has no ADD_ONION
// argument for it: ephemeral services cannot use it.
type IntroDoS struct {
	// Rate is the number of introductions per second (0 to 2^31-1; 0
	// keeps tor's default of 25).
	Rate int
	// Burst is the burst allowed (0 keeps tor's default of 200); it must
	// not be below Rate.
	Burst int
}

func (d *IntroDoS) check() error {
	if d == nil {
		return nil
	}
	return checkRateBurst("intro DoS", d.Rate, d.Burst, 25, 200)
}

func (d *IntroDoS) options() []config.Option {
	if d == nil {
		return nil
	}
	o := []config.Option{{Key: "HiddenServiceEnableIntroDoSDefense", Value: "1"}}
	if d.Rate > 0 {
		o = append(o, config.Option{Key: "HiddenServiceEnableIntroDoSRatePerSec", Value: strconv.Itoa(d.Rate)})
	}
	if d.Burst > 0 {
		o = append(o, config.Option{Key: "HiddenServiceEnableIntroDoSBurstPerSec", Value: strconv.Itoa(d.Burst)})
	}
	return o
}

// Limits of HiddenServiceNumIntroductionPoints on tor 0.4.9.
const (
	MinIntroPoints = 3
	MaxIntroPoints = 20
)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
