package config

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// OptionInfo describes one option a tor knows.
type OptionInfo struct {
	// Name is tor's canonical spelling.
	Name string
	// Type is the option's type (typeUnknown when only the name is known,
	// as with tor --list-torrc-options).
	Type Type
	// Group is the Virtual option whose ordered list this option is part of
	// ("HiddenServiceOptions" for HiddenServiceDir, HiddenServicePort, ...;
	// "SocksPortLines" for SocksPort and __SocksPort), or "" when it stands
	// alone. Setting any member of a group replaces the whole group.
	Group string
	// Default is the default value from GETINFO config/defaults (unset
	// when tor lists none).
	Default Value
	// Doc is the description tor gives, if any.
	Doc string
}

// MultiValued reports whether the option can have several lines.
func (o *OptionInfo) MultiValued() bool { return o.Type.MultiValued() || o.Group != "" }

// Schema is the set of options one tor binary knows: names, types, groups
// and defaults. Names are matched case-insensitively, like tor does.
type Schema struct {
	byLower map[string]*OptionInfo
	order   []string // canonical names in tor's order
	// typed is false for a schema built from names only.
	typed bool
}

// ErrUnknownOption is returned (wrapped) for an option name the tor in
// question does not know, such as a misspelt one.
var ErrUnknownOption = errors.New("config: unknown option")

//go:embed names-0.4.9.txt
var builtinNames string

// BuiltinSchema returns the options, types and groups of tor 0.4.9 (as
// GETINFO config/names reports them), without defaults. It gives types to
// a TorConfig built offline; the names a particular tor binary accepts
// come from SchemaFromBinary.
func BuiltinSchema() *Schema {
	s, err := parseConfigNames(builtinNames)
	if err != nil {
		panic("config: bad builtin schema: " + err.Error())
	}
	return s
}

// parseConfigNames parses the value of GETINFO config/names: one
// "Name Type [doc]" line per option.
func parseConfigNames(text string) (*Schema, error) {
	s := &Schema{byLower: map[string]*OptionInfo{}, typed: true}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) < 2 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("config: config/names line %d: %q is not \"Name Type [doc]\"", n+1, line)
		}
		o := &OptionInfo{Name: f[0], Type: normalizeType(f[1])}
		if len(f) == 3 {
			o.Doc = strings.TrimSpace(f[2])
		}
		s.add(o)
	}
	s.linkGroups()
	return s, nil
}

func (s *Schema) add(o *OptionInfo) {
	k := strings.ToLower(o.Name)
	if _, dup := s.byLower[k]; !dup {
		s.order = append(s.order, o.Name)
	}
	o.Default.Name, o.Default.Type = o.Name, o.Type
	s.byLower[k] = o
}

// linkGroups assigns every Dependent option to its Virtual group. Tor does
// not say which group an option belongs to, but its names follow fixed
// patterns: HiddenService* options belong to HiddenServiceOptions, and
// FooPort and __FooPort to FooPortLines. A Dependent option matching no
// Virtual option is treated as a multi-valued option of its own.
func (s *Schema) linkGroups() {
	for _, o := range s.byLower {
		if o.Type == typeDependent {
			o.Group = s.groupFor(o.Name)
		}
	}
}

func (s *Schema) groupFor(name string) string {
	if strings.HasPrefix(strings.ToLower(name), "hiddenservice") {
		if g, ok := s.byLower["hiddenserviceoptions"]; ok && g.Type == typeVirtual {
			return g.Name
		}
	}
	base := strings.TrimPrefix(name, "__")
	if g, ok := s.byLower[strings.ToLower(base+"Lines")]; ok && g.Type == typeVirtual {
		return g.Name
	}
	return ""
}

// parseDefaults reads the value of GETINFO config/defaults ("Name Value"
// lines; tor 0.4.9 quotes every value as a C string, older tors do not)
// into the schema's defaults. A multi-valued option has several lines.
// Options tor lists that the schema lacks are added with an unknown type.
func (s *Schema) parseDefaults(text string) error {
	defs := map[string][]string{}
	var order []string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, raw, _ := strings.Cut(line, " ")
		if name == "" {
			return fmt.Errorf("config: config/defaults line %d: no option name in %q", n+1, line)
		}
		v := raw
		if strings.HasPrefix(raw, `"`) {
			dv, rest, err := unquoteCString(raw)
			if err != nil || strings.TrimSpace(rest) != "" {
				if err == nil {
					err = errors.New("data after the quoted value")
				}
				return fmt.Errorf("config: config/defaults line %d (%s): %w", n+1, name, err)
			}
			v = dv
		}
		k := strings.ToLower(name)
		if _, ok := defs[k]; !ok {
			order = append(order, name)
		}
		defs[k] = append(defs[k], v)
	}
	for _, name := range order {
		o := s.byLower[strings.ToLower(name)]
		if o == nil {
			o = &OptionInfo{Name: name}
			s.add(o)
		}
		o.Default = newValue(o.Name, o.Type, defs[strings.ToLower(name)]...)
	}
	return nil
}

// Lookup returns the option called name (case-insensitively).
func (s *Schema) Lookup(name string) (*OptionInfo, bool) {
	if s == nil {
		return nil, false
	}
	o, ok := s.byLower[strings.ToLower(name)]
	return o, ok
}

// Names returns every option name in tor's order.
func (s *Schema) Names() []string { return append([]string(nil), s.order...) }

// Members returns the options of the given Virtual group, in tor's order.
func (s *Schema) Members(group string) []string {
	var m []string
	for _, n := range s.order {
		if strings.EqualFold(s.byLower[strings.ToLower(n)].Group, group) {
			m = append(m, n)
		}
	}
	return m
}

// CheckNames reports every name that cannot be set in a torrc or with
// SETCONF, because the schema does not know it or it is a Virtual group
// (which can only be read or cleared), in one error wrapping
// ErrUnknownOption (nil when all are fine). Tor also accepts a few old
// aliases and obsolete names (with a warning) that this check refuses: use
// the canonical names.
func (s *Schema) CheckNames(names ...string) error {
	var bad []string
	seen := map[string]bool{}
	for _, n := range names {
		if o, ok := s.Lookup(n); (!ok || o.Type == typeVirtual) && !seen[strings.ToLower(n)] {
			seen[strings.ToLower(n)] = true
			bad = append(bad, n+s.suggest(n))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnknownOption, strings.Join(bad, ", "))
}

// checkTorrc reports every option of t the schema does not know.
func (s *Schema) checkTorrc(t *Torrc) error { return s.CheckNames(t.Keys()...) }

// suggest returns " (did you mean X?)" for the closest known name.
func (s *Schema) suggest(name string) string {
	best, bestD := "", 3
	ln := strings.ToLower(name)
	for _, n := range s.order {
		if d := editDistance(ln, strings.ToLower(n), bestD); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of a and b, or max when it is
// at least max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			c = min(c, prev[j]+1, cur[j-1]+1)
			cur[j] = c
			rowMin = min(rowMin, c)
		}
		if rowMin >= max {
			return max
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], max)
}

// SchemaFromBinary asks the tor binary at torPath ("tor" searches PATH)
// for the option names it accepts (tor --list-torrc-options) and returns
// them as a schema, with the types and groups of BuiltinSchema where it
// knows the name. It needs no running tor, so a launcher can refuse a
// misspelt option before tor starts.
func SchemaFromBinary(ctx context.Context, torPath string) (*Schema, error) {
	if torPath == "" {
		torPath = "tor"
	}
	cmd := exec.CommandContext(ctx, torPath, "--list-torrc-options")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("config: %s --list-torrc-options: %w: %s", torPath, err, strings.TrimSpace(stderr.String()))
	}
	return parseOptionList(out)
}

// parseOptionList reads the output of tor --list-torrc-options.
func parseOptionList(out []byte) (*Schema, error) {
	builtin := BuiltinSchema()
	s := &Schema{byLower: map[string]*OptionInfo{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		// Skip log lines tor may print ("Nov 22 ... [notice] ...").
		if name == "" || strings.ContainsAny(name, " \t[") {
			continue
		}
		o := &OptionInfo{Name: name}
		if b, ok := builtin.Lookup(name); ok {
			o.Type = b.Type
		}
		s.add(o)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(s.order) == 0 {
		return nil, errors.New("config: tor --list-torrc-options listed no options")
	}
	// The Virtual groups are not torrc options, so the binary does not list
	// them; take them from the builtin schema to link the groups.
	for _, n := range builtin.order {
		if b, _ := builtin.Lookup(n); b.Type == typeVirtual {
			if _, ok := s.Lookup(n); !ok {
				s.add(&OptionInfo{Name: b.Name, Type: typeVirtual})
			}
		}
	}
	s.linkGroups()
	return s, nil
}
