package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// HiddenService is one onion service configured in tor's options: a
// HiddenServiceDir line and the HiddenService* lines that follow it, up to
// the next HiddenServiceDir. Tor keeps every service in one ordered list
// (the virtual option HiddenServiceOptions) and replaces the whole list
// whenever any member is set, so services are read and written as complete
// groups.
type HiddenService struct {
	// Dir is the service's directory (HiddenServiceDir).
	Dir string
	// Version is HiddenServiceVersion (3 today), 0 when not given.
	Version int
	// Ports are the HiddenServicePort values in order: "VIRTPORT [TARGET]",
	// such as "80 127.0.0.1:8080" or "443 unix:/run/app.sock".
	Ports []string
	// Options are the service's other lines in order (HiddenServiceMaxStreams,
	// HiddenServiceNumIntroductionPoints, HiddenServicePoWDefensesEnabled,
	// ...), with their full option names.
	Options []Option
}

// Option returns the last value of one of the service's other options.
func (h HiddenService) Option(key string) (string, bool) {
	v, ok := "", false
	for _, o := range h.Options {
		if strings.EqualFold(o.Key, key) {
			v, ok = o.Value, true
		}
	}
	return v, ok
}

// clone returns a deep copy.
func (h HiddenService) clone() HiddenService {
	h.Ports = append([]string(nil), h.Ports...)
	h.Options = append([]Option(nil), h.Options...)
	return h
}

// Lines returns the service as option lines in the order tor wants them:
// HiddenServiceDir, HiddenServiceVersion, the ports, then the other
// options.
func (h HiddenService) Lines() []Option {
	var l []Option
	if h.Dir != "" {
		l = append(l, Option{"HiddenServiceDir", h.Dir})
	}
	if h.Version != 0 {
		l = append(l, Option{"HiddenServiceVersion", strconv.Itoa(h.Version)})
	}
	for _, p := range h.Ports {
		l = append(l, Option{"HiddenServicePort", p})
	}
	return append(l, h.Options...)
}

func (h HiddenService) validate() error {
	if h.Dir == "" {
		return fmt.Errorf("%w: a hidden service needs a HiddenServiceDir", ErrInvalidOption)
	}
	if !filepath.IsAbs(h.Dir) {
		// Tor resolves it against its own working directory, and when it
		// cannot create the directory it exits (see checkNewServiceDirs).
		return fmt.Errorf("%w: HiddenServiceDir %q must be an absolute path", ErrInvalidOption, h.Dir)
	}
	for _, o := range h.Lines() {
		if err := validateOption(o); err != nil {
			return err
		}
	}
	for _, o := range h.Options {
		lk := strings.ToLower(o.Key)
		if !strings.HasPrefix(lk, "hiddenservice") || lk == "hiddenservicedir" {
			return fmt.Errorf("%w: %s is not a per-service HiddenService* option", ErrInvalidOption, o.Key)
		}
	}
	return nil
}

// ParseHiddenServices groups the lines tor returns for GETCONF
// HiddenServiceOptions (or a CONF_CHANGED event) into services. Lines
// before the first HiddenServiceDir, which tor would refuse, form a
// service with an empty Dir so that nothing is lost.
func ParseHiddenServices(lines []Option) []HiddenService {
	var hs []HiddenService
	for _, o := range lines {
		switch strings.ToLower(o.Key) {
		case "hiddenservicedir":
			hs = append(hs, HiddenService{Dir: o.Value})
			continue
		case "hiddenserviceoptions":
			continue // the bare virtual name: no services
		}
		if len(hs) == 0 {
			hs = append(hs, HiddenService{})
		}
		h := &hs[len(hs)-1]
		switch strings.ToLower(o.Key) {
		case "hiddenserviceport":
			h.Ports = append(h.Ports, o.Value)
			continue
		case "hiddenserviceversion":
			if v, err := strconv.Atoi(strings.TrimSpace(o.Value)); err == nil && h.Version == 0 && v != 0 {
				h.Version = v
				continue
			}
		}
		h.Options = append(h.Options, o)
	}
	return hs
}

// hiddenServiceLines renders services as one ordered list of lines.
func hiddenServiceLines(hs []HiddenService) []Option {
	var l []Option
	for _, h := range hs {
		l = append(l, h.Lines()...)
	}
	return l
}

// checkNewServiceDirs refuses hidden services whose directory tor could
// not create because its parent does not exist. Tor 0.4.9 accepts such a
// SETCONF and then exits ("Acting on config options left us in a broken
// state. Dying."), so the check must happen before the SETCONF. Only
// services new to tor are checked, and only a parent that is visibly
// missing on this machine counts (a tor on another machine may see other
// files).
func checkNewServiceDirs(old, updated []HiddenService) error {
	had := map[string]bool{}
	for _, h := range old {
		had[h.Dir] = true
	}
	for _, h := range updated {
		if had[h.Dir] || h.Dir == "" {
			continue
		}
		parent := filepath.Dir(h.Dir)
		if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: the parent of HiddenServiceDir %s does not exist; tor would exit trying to create it", ErrInvalidOption, h.Dir)
		}
	}
	return nil
}
