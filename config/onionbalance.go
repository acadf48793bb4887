package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OnionbalanceConfigFile is the file, in the directory of an on-disk onion
// service, from which tor reads the frontend addresses of an Onionbalance
// instance ("MasterOnionAddress <address>" lines).
const OnionbalanceConfigFile = "ob_config"

// onionbalanceOption is tor's per-service option (canonical spelling, as
// GETCONF returns it).
const onionbalanceOption = "HiddenServiceOnionBalanceInstance"

// SetOnionbalanceInstance makes h an instance (a backend) of Onionbalance
// frontends, or not: it sets or removes HiddenServiceOnionBalanceInstance
// 1 in h.Options. The service then accepts clients that came through the
// frontends' descriptors as well as its own. Tor reads the frontends'
// addresses from OnionbalanceConfigFile in h.Dir when it reads the
// configuration and refuses the service (SETCONF: 513; at start: exits)
// when the file is missing, so write it first (WriteOnionbalanceConfig),
// on the machine where that tor runs.
//
// Only on-disk services can be instances: ADD_ONION has no such flag or
// argument (tor 0.4.9.11 answers 512 Invalid 'Flags' argument), and tor
// reads the file from the service directory, which an ephemeral service
// does not have.
func (h *HiddenService) SetOnionbalanceInstance(on bool) {
	kept := h.Options[:0:0]
	for _, o := range h.Options {
		if !strings.EqualFold(o.Key, onionbalanceOption) {
			kept = append(kept, o)
		}
	}
	if on {
		kept = append(kept, Option{Key: onionbalanceOption, Value: "1"})
	}
	h.Options = kept
}

// IsOnionbalanceInstance reports whether h sets
// HiddenServiceOnionBalanceInstance 1.
func (h HiddenService) IsOnionbalanceInstance() bool {
	v, ok := h.Option(onionbalanceOption)
	return ok && strings.TrimSpace(v) == "1"
}

// WriteOnionbalanceConfig writes dir/ob_config, naming the Onionbalance
// frontends (master onion addresses, with or without ".onion") whose
// clients the service in dir accepts, one "MasterOnionAddress" line each.
// It creates dir (mode 0700) when missing; the file is mode 0600 and
// replaced atomically.
//
// Addresses are checked for their form only (56 base32 characters): tor
// 0.4.9 registers a mistyped address without complaint, so check the
// checksum too (onion.ParseAddress) when the address comes from a person.
func WriteOnionbalanceConfig(dir string, masters ...string) error {
	b, err := marshalOnionbalanceConfig(masters)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+OnionbalanceConfigFile+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, OnionbalanceConfigFile))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func marshalOnionbalanceConfig(masters []string) ([]byte, error) {
	if len(masters) == 0 {
		return nil, fmt.Errorf("%w: an Onionbalance instance needs at least one master address", ErrInvalidOption)
	}
	var b strings.Builder
	for _, m := range masters {
		id := strings.TrimSuffix(strings.ToLower(m), ".onion")
		if !isV3ServiceID(id) {
			return nil, fmt.Errorf("%w: %q is not a v3 onion address", ErrInvalidOption, m)
		}
		fmt.Fprintf(&b, "MasterOnionAddress %s.onion\n", id)
	}
	return []byte(b.String()), nil
}

// isV3ServiceID reports whether s has the form of a v3 service ID: 56
// characters of base32 (a-z, 2-7).
func isV3ServiceID(s string) bool {
	if len(s) != 56 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
