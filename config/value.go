package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a tor option as GETINFO config/names reports it.
// Tor 0.4.9 has Boolean ("0" or "1"), Boolean+Auto ("0", "1" or "auto"),
// Integer, SignedInteger, Float, TimeInterval, TimeMsecInterval, DataSize,
// String, Filename, Time, CommaList, RouterList, LineList (one value per
// line), Dependent (a member of an ordered group such as HiddenServicePort
// in HiddenServiceOptions), Virtual (such a group as a whole) and
// Obsolete. Tor may add types; an unknown type is kept as its name and its
// values are read as strings.
type Type string

// The option types of tor 0.4.9 (tor's src/lib/confmgt/type_defs.c).
const (
	typeUnknown          Type = ""
	typeBoolean          Type = "Boolean"          // "0" or "1"
	typeAutoBool         Type = "Boolean+Auto"     // "0", "1" or "auto"
	typeInteger          Type = "Integer"          // non-negative (some are 64-bit)
	typeSignedInteger    Type = "SignedInteger"    // may be negative
	typeFloat            Type = "Float"            // tor prints "%f"
	typeTimeInterval     Type = "TimeInterval"     // seconds, or "N unit"
	typeTimeMsecInterval Type = "TimeMsecInterval" // milliseconds, or "N unit"
	typeDataSize         Type = "DataSize"         // bytes, or "N unit"
	typeString           Type = "String"
	typeFilename         Type = "Filename"
	typeTime             Type = "Time" // "YYYY-MM-DD HH:MM:SS" (UTC)
	typeCommaList        Type = "CommaList"
	typeRouterList       Type = "RouterList" // comma-separated relays, countries, addresses
	typeLineList         Type = "LineList"   // multi-valued: one value per line
	// typeDependent is one member of a group of options that tor keeps in
	// one ordered list, such as HiddenServicePort (group
	// HiddenServiceOptions) or SocksPort (group SocksPortLines). Older tors
	// spell it "Dependant".
	typeDependent Type = "Dependent"
	// typeVirtual names such a group as a whole; it can be read and
	// cleared but not assigned.
	typeVirtual  Type = "Virtual"
	typeObsolete Type = "Obsolete"
)

// normalizeType maps old spellings to the current ones.
func normalizeType(s string) Type {
	switch s {
	case "Dependant":
		return typeDependent
	}
	return Type(s)
}

// MultiValued reports whether an option of this type can have several
// lines (LineList, Dependent, Virtual).
func (t Type) MultiValued() bool {
	return t == typeLineList || t == typeDependent || t == typeVirtual
}

// ErrType is returned (wrapped) when a value cannot be read as the
// requested type.
var ErrType = errors.New("config: value has the wrong type")

// autoBool is the value of a Boolean+Auto option.
type autoBool int

// The values of a Boolean+Auto option.
const (
	autoAuto  autoBool = -1
	autoFalse autoBool = 0
	autoTrue  autoBool = 1
)

// String returns the value as tor spells it: "0", "1" or "auto".
func (a autoBool) String() string {
	switch a {
	case autoAuto:
		return "auto"
	case autoTrue:
		return "1"
	}
	return "0"
}

// Value is the value of one option as tor reports it: unset, or one or
// more lines (a single-valued option has exactly one). Tor's GETCONF tells
// an unset option ("Key") from an empty one ("Key="); Value keeps that
// difference. The typed accessors read the last line, the one tor uses for
// a single-valued option, and accept both the plain numbers GETCONF prints
// and the "N unit" forms of torrc files and config/defaults.
type Value struct {
	// Name is the option name (tor's canonical spelling when known).
	Name string
	// Type is the option's type; typeUnknown when tor did not say.
	Type  Type
	lines []string
}

// newValue returns a Value holding the given lines (none: unset).
func newValue(name string, typ Type, lines ...string) Value {
	var l []string
	if len(lines) > 0 {
		l = append([]string(nil), lines...)
	}
	return Value{Name: name, Type: typ, lines: l}
}

// IsSet reports whether the option has a value (possibly empty).
func (v Value) IsSet() bool { return len(v.lines) > 0 }

// Lines returns a copy of every value line in order (nil when unset).
func (v Value) Lines() []string {
	if len(v.lines) == 0 {
		return nil
	}
	return append([]string(nil), v.lines...)
}

// String returns the last line, or "" when unset.
func (v Value) String() string {
	if len(v.lines) == 0 {
		return ""
	}
	return v.lines[len(v.lines)-1]
}

// Equal reports whether v and w hold the same lines (names and types are
// not compared).
func (v Value) Equal(w Value) bool { return slices.Equal(v.lines, w.lines) }

func (v Value) last() (string, error) {
	if len(v.lines) == 0 {
		return "", fmt.Errorf("%w: %s is not set", ErrType, v.Name)
	}
	return strings.TrimSpace(v.lines[len(v.lines)-1]), nil
}

func (v Value) typeErr(want string, s string, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %s=%q is not %s: %v", ErrType, v.Name, s, want, err)
	}
	return fmt.Errorf("%w: %s=%q is not %s", ErrType, v.Name, s, want)
}

// Bool reads a Boolean ("0" or "1"; an unset Boolean is an error).
func (v Value) Bool() (bool, error) {
	s, err := v.last()
	if err != nil {
		return false, err
	}
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, v.typeErr("a Boolean (0 or 1)", s, nil)
}

// autoBool reads a Boolean+Auto ("0", "1" or "auto").
func (v Value) autoBool() (autoBool, error) {
	s, err := v.last()
	if err != nil {
		return autoFalse, err
	}
	switch strings.ToLower(s) {
	case "0":
		return autoFalse, nil
	case "1":
		return autoTrue, nil
	case "auto":
		return autoAuto, nil
	}
	return autoFalse, v.typeErr("a Boolean+Auto (0, 1 or auto)", s, nil)
}

// Int reads an Integer or SignedInteger.
func (v Value) Int() (int64, error) {
	s, err := v.last()
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return 0, v.typeErr("an integer", s, perr)
	}
	return n, nil
}

// Uint reads a non-negative Integer, including 64-bit ones such as
// __OwningControllerFD (whose "unset" default is 2^64-1).
func (v Value) Uint() (uint64, error) {
	s, err := v.last()
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil {
		return 0, v.typeErr("a non-negative integer", s, perr)
	}
	return n, nil
}

// Float reads a Float.
func (v Value) Float() (float64, error) {
	s, err := v.last()
	if err != nil {
		return 0, err
	}
	f, perr := strconv.ParseFloat(s, 64)
	if perr != nil {
		return 0, v.typeErr("a number", s, perr)
	}
	return f, nil
}

// Duration reads a TimeInterval (a plain number counts seconds) or a
// TimeMsecInterval (a plain number counts milliseconds), with tor's units
// ("10 minutes", "1 second", "250 msec", "2 weeks", ...), up to tor's
// limit of 2^31-1 units. An option of another type is read as a
// TimeInterval.
func (v Value) Duration() (time.Duration, error) {
	s, err := v.last()
	if err != nil {
		return 0, err
	}
	table, unitLen := timeUnits, time.Second
	if v.Type == typeTimeMsecInterval {
		table, unitLen = msecUnits, time.Millisecond
	}
	n, perr := parseUnits(s, table)
	if perr == nil && n > math.MaxInt32 {
		perr = errors.New("too long") // tor keeps intervals in an int
	}
	if perr != nil {
		return 0, v.typeErr("a time interval", s, perr)
	}
	return time.Duration(n) * unitLen, nil
}

// DataSize reads a DataSize in bytes, with tor's units ("1 GB", "512 KB",
// "10 mbits", ...; tor's KB, MB, GB and TB are powers of 1024).
func (v Value) DataSize() (uint64, error) {
	s, err := v.last()
	if err != nil {
		return 0, err
	}
	n, perr := parseUnits(s, memoryUnits)
	if perr != nil {
		return 0, v.typeErr("a data size", s, perr)
	}
	return n, nil
}

// Time reads a Time ("YYYY-MM-DD HH:MM:SS", UTC).
func (v Value) Time() (time.Time, error) {
	s, err := v.last()
	if err != nil {
		return time.Time{}, err
	}
	t, perr := time.Parse(time.DateTime, s)
	if perr != nil {
		return time.Time{}, v.typeErr("a time", s, perr)
	}
	return t, nil
}

// List reads a list: the comma-separated items of a CommaList or
// RouterList (blank items and spaces around items dropped, as tor does),
// or the lines of any other option. An unset option gives nil.
func (v Value) List() []string {
	if v.Type == typeCommaList || v.Type == typeRouterList {
		var items []string
		for _, line := range v.lines {
			for _, it := range strings.Split(line, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
		}
		return items
	}
	return v.Lines()
}

// normalized returns a canonical form of v for comparisons with defaults:
// numbers with units become plain numbers, lists lose their spacing.
func (v Value) normalized() []string {
	if len(v.lines) == 0 {
		return nil
	}
	conv := func(f func() (string, error)) []string {
		if s, err := f(); err == nil {
			return []string{s}
		}
		return v.lines
	}
	switch v.Type {
	case typeTimeInterval, typeTimeMsecInterval:
		return conv(func() (string, error) { d, err := v.Duration(); return strconv.FormatInt(int64(d), 10), err })
	case typeDataSize:
		return conv(func() (string, error) { n, err := v.DataSize(); return strconv.FormatUint(n, 10), err })
	case typeFloat:
		return conv(func() (string, error) { f, err := v.Float(); return strconv.FormatFloat(f, 'g', -1, 64), err })
	case typeInteger, typeSignedInteger:
		return conv(func() (string, error) { n, err := v.Int(); return strconv.FormatInt(n, 10), err })
	case typeAutoBool:
		return conv(func() (string, error) { a, err := v.autoBool(); return a.String(), err })
	case typeCommaList, typeRouterList:
		return []string{strings.Join(v.List(), ",")}
	}
	return v.lines
}

type unit struct {
	name string
	mult uint64
}

// The unit tables of tor's src/lib/confmgt/unitparse.c (matched
// case-insensitively).
var (
	memoryUnits = []unit{
		{"", 1}, {"b", 1}, {"byte", 1}, {"bytes", 1},
		{"kb", 1 << 10}, {"kbyte", 1 << 10}, {"kbytes", 1 << 10}, {"kilobyte", 1 << 10}, {"kilobytes", 1 << 10},
		{"kilobits", 1 << 7}, {"kilobit", 1 << 7}, {"kbits", 1 << 7}, {"kbit", 1 << 7},
		{"m", 1 << 20}, {"mb", 1 << 20}, {"mbyte", 1 << 20}, {"mbytes", 1 << 20}, {"megabyte", 1 << 20}, {"megabytes", 1 << 20},
		{"megabits", 1 << 17}, {"megabit", 1 << 17}, {"mbits", 1 << 17}, {"mbit", 1 << 17},
		{"gb", 1 << 30}, {"gbyte", 1 << 30}, {"gbytes", 1 << 30}, {"gigabyte", 1 << 30}, {"gigabytes", 1 << 30},
		{"gigabits", 1 << 27}, {"gigabit", 1 << 27}, {"gbits", 1 << 27}, {"gbit", 1 << 27},
		{"tb", 1 << 40}, {"tbyte", 1 << 40}, {"tbytes", 1 << 40}, {"terabyte", 1 << 40}, {"terabytes", 1 << 40},
		{"terabits", 1 << 37}, {"terabit", 1 << 37}, {"tbits", 1 << 37}, {"tbit", 1 << 37},
	}
	timeUnits = []unit{
		{"", 1}, {"second", 1}, {"seconds", 1}, {"minute", 60}, {"minutes", 60},
		{"hour", 3600}, {"hours", 3600}, {"day", 86400}, {"days", 86400},
		{"week", 7 * 86400}, {"weeks", 7 * 86400}, {"month", 2629728}, {"months", 2629728},
	}
	msecUnits = []unit{
		{"", 1}, {"msec", 1}, {"millisecond", 1}, {"milliseconds", 1},
		{"second", 1000}, {"seconds", 1000}, {"minute", 60000}, {"minutes", 60000},
		{"hour", 3600000}, {"hours", 3600000}, {"day", 86400000}, {"days", 86400000},
		{"week", 7 * 86400000}, {"weeks", 7 * 86400000},
	}
)

// parseUnits parses "number [unit]" the way tor's config_parse_units does:
// an integer or decimal number, optional spaces, and a unit from the table.
func parseUnits(s string, table []unit) (uint64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || (i == 0 && (s[i] == '-' || s[i] == '+'))) {
		i++
	}
	num, rest := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, errors.New("no number")
	}
	var mult uint64
	found := false
	for _, u := range table {
		if strings.EqualFold(u.name, rest) {
			mult, found = u.mult, true
			break
		}
	}
	if !found {
		return 0, fmt.Errorf("unknown unit %q", rest)
	}
	if n, err := strconv.ParseUint(num, 10, 64); err == nil {
		if n != 0 && mult > math.MaxInt64/n {
			return 0, errors.New("overflow")
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	f *= float64(mult)
	if f < 0 {
		return 0, errors.New("negative")
	}
	if f > math.MaxInt64 {
		return 0, errors.New("overflow")
	}
	return uint64(f), nil
}

// formatDuration formats d for a TimeInterval option ("N seconds"), the
// form tor accepts in SETCONF and torrc files. Sub-second parts are
// dropped; use formatMsecDuration for TimeMsecInterval options.
func formatDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + " seconds"
}

// formatMsecDuration formats d for a TimeMsecInterval option ("N msec").
func formatMsecDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + " msec"
}

// formatBool formats b for a Boolean option ("0" or "1").
func formatBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
