package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gotorcon/tor/control"
)

// Option is one torrc line: a key and its value. Keys are case-insensitive
// to tor; values are bytes kept exactly as given (rendering quotes them when
// needed).
type Option struct {
	Key   string
	Value string
}

// Torrc is an ordered list of torrc options, as tor reads them from a
// configuration file. Order matters to tor for multi-valued options
// (SocksPort, Log, HiddenServicePort, ...) and for context-sensitive groups
// (HiddenServiceDir followed by its HiddenServicePort lines), so a Torrc keeps
// every option in the order it was added.
//
// The zero value is an empty Torrc ready to use. A Torrc is not safe for
// concurrent mutation.
type Torrc struct {
	opts []Option
}

// ErrInvalidOption is returned (wrapped) for a key or value that cannot be
// written to a torrc: an empty key, a key with spaces or control characters,
// or a value containing a NUL byte.
var ErrInvalidOption = errors.New("config: invalid torrc option")

// ErrConflict is returned (wrapped) by Merge when both sides set the same
// option to different values.
var ErrConflict = errors.New("config: conflicting torrc options")

// Add appends one option line. It returns t so calls can be chained.
func (t *Torrc) Add(key, value string) *Torrc {
	t.opts = append(t.opts, Option{Key: key, Value: value})
	return t
}

// Set replaces every line of key with the given values, in order, at the
// position of the first existing line of key (or at the end). Set with no
// values removes the key.
func (t *Torrc) Set(key string, values ...string) *Torrc {
	pos := -1
	kept := t.opts[:0:0]
	for _, o := range t.opts {
		if strings.EqualFold(o.Key, key) {
			if pos < 0 {
				pos = len(kept)
			}
			continue
		}
		kept = append(kept, o)
	}
	if pos < 0 {
		pos = len(kept)
	}
	add := make([]Option, len(values))
	for i, v := range values {
		add[i] = Option{Key: key, Value: v}
	}
	t.opts = append(kept[:pos:pos], append(add, kept[pos:]...)...)
	return t
}

// Delete removes every line of key.
func (t *Torrc) Delete(key string) *Torrc { return t.Set(key) }

// Values returns the values of key in order (nil when it is not set).
func (t *Torrc) Values(key string) []string {
	var vs []string
	for _, o := range t.opts {
		if strings.EqualFold(o.Key, key) {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// Get returns the last value of key (the one tor uses for a single-valued
// option) and whether key is set at all.
func (t *Torrc) Get(key string) (string, bool) {
	vs := t.Values(key)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// Has reports whether key has at least one line.
func (t *Torrc) Has(key string) bool {
	_, ok := t.Get(key)
	return ok
}

// Options returns a copy of the option lines in order.
func (t *Torrc) Options() []Option { return append([]Option(nil), t.opts...) }

// Clone returns a deep copy of t. Cloning a nil Torrc gives an empty one.
func (t *Torrc) Clone() *Torrc {
	if t == nil {
		return &Torrc{}
	}
	return &Torrc{opts: t.Options()}
}

// Keys returns the distinct keys in order of first appearance, with the
// spelling of their first line.
func (t *Torrc) Keys() []string {
	var keys []string
	seen := map[string]bool{}
	for _, o := range t.opts {
		k := strings.ToLower(o.Key)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, o.Key)
		}
	}
	return keys
}

// Merge appends the options of other that t does not set. A key that both
// set is a conflict unless both give the same values in the same order; the
// error wraps ErrConflict and names every conflicting key. On error t is
// unchanged.
func (t *Torrc) Merge(other *Torrc) error {
	if other == nil {
		return nil
	}
	var conflicts []string
	var add []Option
	for _, k := range other.Keys() {
		mine, theirs := t.Values(k), other.Values(k)
		if mine == nil {
			for _, v := range theirs {
				add = append(add, Option{Key: k, Value: v})
			}
			continue
		}
		if !slices.Equal(mine, theirs) {
			conflicts = append(conflicts, fmt.Sprintf("%s (%q vs %q)", k, mine, theirs))
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%w: %s", ErrConflict, strings.Join(conflicts, ", "))
	}
	t.opts = append(t.opts, add...)
	return nil
}

// Validate reports the first option that cannot be written to a torrc.
func (t *Torrc) Validate() error {
	for _, o := range t.opts {
		if err := validateOption(o); err != nil {
			return err
		}
	}
	return nil
}

func validateOption(o Option) error {
	if o.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidOption)
	}
	for i := 0; i < len(o.Key); i++ {
		c := o.Key[i]
		if c <= ' ' || c >= 0x7f || c == '#' || c == '"' || c == '\\' || c == '=' {
			return fmt.Errorf("%w: key %q has a forbidden character %q", ErrInvalidOption, o.Key, c)
		}
	}
	if strings.IndexByte(o.Value, 0) >= 0 {
		return fmt.Errorf("%w: value of %s contains a NUL byte", ErrInvalidOption, o.Key)
	}
	return nil
}

// MarshalText renders t as torrc text: one "Key Value" line per option, in
// order. Values that tor would otherwise read differently (empty, leading or
// trailing space, '#', '"' at the start, backslashes, control characters,
// bytes outside printable ASCII) are written as a C-escaped quoted string,
// which tor decodes back to the exact bytes.
func (t *Torrc) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	for _, o := range t.opts {
		if err := validateOption(o); err != nil {
			return nil, err
		}
		b.WriteString(o.Key)
		b.WriteByte(' ')
		if needsQuoting(o.Value) {
			b.WriteString(control.QuoteCString(o.Value))
		} else {
			b.WriteString(o.Value)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// String renders t as torrc text; invalid options are reported inline.
func (t *Torrc) String() string {
	b, err := t.MarshalText()
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	return string(b)
}

// WriteFile writes t to path with mode 0600 (a torrc may hold secrets such
// as HashedControlPassword).
func (t *Torrc) WriteFile(path string) error {
	b, err := t.MarshalText()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func needsQuoting(v string) bool {
	if v == "" || v[0] == '"' || v[0] == ' ' || v[0] == '\t' {
		return true
	}
	if last := v[len(v)-1]; last == ' ' || last == '\t' {
		return true
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' || c >= 0x7f || c == '#' || c == '\\' {
			return true
		}
	}
	return false
}

// ParseTorrc reads torrc text: one option per line, '#' comments, values
// either raw to the end of the line or a C-escaped quoted string, and
// backslash-newline continuations. It accepts what MarshalText writes and
// what tor writes with SAVECONF.
func ParseTorrc(text []byte) (*Torrc, error) {
	t := &Torrc{}
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	for n := 0; n < len(lines); n++ {
		lineNo := n + 1
		line := lines[n]
		// Join continuation lines (a trailing backslash) outside quotes.
		for strings.HasSuffix(line, `\`) && !strings.HasPrefix(strings.TrimSpace(afterKey(line)), `"`) && n+1 < len(lines) {
			n++
			next := lines[n]
			if strings.HasPrefix(strings.TrimSpace(next), "#") {
				continue // tor skips comment lines inside a continuation
			}
			line = line[:len(line)-1] + next
		}
		s := strings.TrimLeft(line, " \t")
		if s == "" || s[0] == '#' {
			continue
		}
		key, rest, _ := strings.Cut(s, " ")
		if k2, r2, ok := strings.Cut(key, "\t"); ok {
			key, rest = k2, r2+" "+rest
		}
		rest = strings.TrimLeft(rest, " \t")
		var value string
		if strings.HasPrefix(rest, `"`) {
			v, tail, err := unquoteCString(rest)
			if err != nil {
				return nil, fmt.Errorf("config: torrc line %d: %w", lineNo, err)
			}
			tail = strings.TrimLeft(tail, " \t")
			if tail != "" && tail[0] != '#' {
				return nil, fmt.Errorf("config: torrc line %d: excess data after quoted string", lineNo)
			}
			value = v
		} else {
			if i := strings.IndexByte(rest, '#'); i >= 0 {
				rest = rest[:i]
			}
			value = strings.TrimRight(rest, " \t")
		}
		t.Add(key, value)
	}
	return t, nil
}

func afterKey(line string) string {
	s := strings.TrimLeft(line, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[i:]
	}
	return ""
}

// unquoteCString decodes a C-escaped quoted string at the start of s, the
// way tor's unescape_string does, and returns the rest of s after the
// closing quote.
func unquoteCString(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, errors.New("quoted string must start with '\"'")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\n' || c == '\r':
			return "", "", errors.New("newline inside quoted string")
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\', '"', '\'', '?':
			b.WriteByte(e)
		case 'x':
			if i+2 >= len(s) {
				return "", "", errors.New("short \\x escape")
			}
			v, perr := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if perr != nil {
				return "", "", fmt.Errorf("bad \\x escape %q", s[i:i+3])
			}
			b.WriteByte(byte(v))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, perr := strconv.ParseUint(s[i:j], 8, 16)
			if perr != nil || v > 255 {
				return "", "", fmt.Errorf("bad octal escape %q", s[i:j])
			}
			b.WriteByte(byte(v))
			i = j - 1
		default:
			return "", "", fmt.Errorf("unknown escape \\%c", e)
		}
	}
	return "", "", errors.New("unterminated quoted string")
}
