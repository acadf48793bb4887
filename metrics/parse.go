package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrFormat is matched by the errors of Parse for text that is not the
// Prometheus text exposition format.
var ErrFormat = errors.New("metrics: malformed exposition text")

// maxLine bounds one line of the exposition text.
const maxLine = 64 << 10

// Sample is one value of a metric: a name, its labels and a value.
type Sample struct {
	// Name is the sample's name; for histograms it has the _bucket, _sum
	// or _count suffix.
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is a metric with its HELP and TYPE and its samples, in the order
// tor wrote them. Tor writes one family per (name, service) group, so a
// name can have several families; Metrics looks across all of them.
type Family struct {
	Name string
	Help string
	// Type is counter, gauge, histogram, summary or untyped.
	Type    string
	Samples []Sample
}

// Metrics is a parsed scrape of tor's MetricsPort.
type Metrics struct {
	Families []*Family
}

// Parse reads the Prometheus text exposition format (version 0.0.4, what
// tor's MetricsPort serves) strictly: a line that is not a comment, a
// HELP or TYPE line, or a well-formed sample is an error matching
// ErrFormat, with its line number.
func Parse(r io.Reader) (*Metrics, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	m := &Metrics{}
	var cur *Family
	family := func(name string) *Family {
		if cur == nil || cur.Name != name {
			cur = &Family{Name: name, Type: "untyped"}
			m.Families = append(m.Families, cur)
		}
		return cur
	}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		bad := func(why string) error {
			if len(line) > 200 {
				line = line[:200] + "..."
			}
			return fmt.Errorf("%w: line %d: %s: %q", ErrFormat, n, why, line)
		}
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "#"):
			f := strings.Fields(trimmed[1:])
			if len(f) < 2 || (f[0] != "HELP" && f[0] != "TYPE") {
				continue // a plain comment
			}
			if !validName(f[1]) {
				return nil, bad("bad metric name")
			}
			fam := family(f[1])
			if f[0] == "TYPE" {
				if len(f) != 3 {
					return nil, bad("TYPE needs one type")
				}
				switch f[2] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return nil, bad("unknown type")
				}
				if len(fam.Samples) > 0 {
					return nil, bad("TYPE after samples")
				}
				fam.Type = f[2]
			} else {
				_, after, _ := strings.Cut(trimmed, f[1])
				help, err := unescape(strings.TrimPrefix(after, " "), false)
				if err != nil {
					return nil, bad(err.Error())
				}
				fam.Help = help
			}
		default:
			s, err := parseSample(trimmed)
			if err != nil {
				return nil, bad(err.Error())
			}
			base := s.Name
			if cur != nil && (cur.Type == "histogram" || cur.Type == "summary") {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(s.Name, suf); ok && b == cur.Name {
						base = b
					}
				}
			}
			fam := family(base)
			fam.Samples = append(fam.Samples, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return m, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func validLabel(s string) bool { return validName(s) && !strings.Contains(s, ":") }

// parseSample parses `name{label="value",...} value [timestamp]`.
func parseSample(line string) (Sample, error) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return Sample{}, errors.New("no value")
	}
	s := Sample{Name: line[:i]}
	if !validName(s.Name) {
		return s, errors.New("bad metric name")
	}
	rest := strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		s.Labels = map[string]string{}
		for {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				return s, errors.New("label without value")
			}
			name := strings.TrimSpace(rest[:eq])
			if !validLabel(name) {
				return s, errors.New("bad label name")
			}
			if _, dup := s.Labels[name]; dup {
				return s, errors.New("label given twice")
			}
			rest = strings.TrimLeft(rest[eq+1:], " \t")
			if !strings.HasPrefix(rest, `"`) {
				return s, errors.New("unquoted label value")
			}
			end := closingQuote(rest)
			if end < 0 {
				return s, errors.New("unterminated label value")
			}
			v, err := unescape(rest[1:end], true)
			if err != nil {
				return s, err
			}
			s.Labels[name] = v
			rest = strings.TrimLeft(rest[end+1:], " \t")
			switch {
			case strings.HasPrefix(rest, ","):
				rest = rest[1:]
			case strings.HasPrefix(rest, "}"):
			default:
				return s, errors.New("expected , or } after a label")
			}
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, errors.New("want a value and an optional timestamp")
	}
	v, err := parseValue(f[0])
	if err != nil {
		return s, err
	}
	s.Value = v
	if len(f) == 2 {
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			return s, errors.New("bad timestamp")
		}
	}
	return s, nil
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	// ParseFloat also takes "inf", "infinity", hex floats and
	// underscores, which the format does not.
	if strings.ContainsAny(s, "_xXiInN") {
		return 0, errors.New("bad value")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("bad value")
	}
	return v, nil
}

// closingQuote returns the index of the quote ending the string that s
// starts with, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unescape decodes \\ and \n (and \" in label values).
func unescape(s string, quote bool) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch {
		case i == len(s):
			return "", errors.New("trailing backslash")
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && quote:
			b.WriteByte('"')
		default:
			if quote {
				return "", fmt.Errorf("bad escape \\%c", s[i])
			}
			// HELP text keeps unknown escapes as they are.
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// Samples returns every sample named name whose labels include the given
// pairs ("key", "value", ...), across all families.
func (m *Metrics) Samples(name string, labels ...string) []Sample {
	var out []Sample
	for _, f := range m.Families {
		for _, s := range f.Samples {
			if s.Name == name && hasLabels(s, labels) {
				out = append(out, s)
			}
		}
	}
	return out
}

// Sum returns the sum of the samples Samples(name, labels...) returns,
// and whether there was any.
func (m *Metrics) Sum(name string, labels ...string) (float64, bool) {
	ss := m.Samples(name, labels...)
	var v float64
	for _, s := range ss {
		v += s.Value
	}
	return v, len(ss) > 0
}

func hasLabels(s Sample, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := s.Labels[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return len(kv)%2 == 0
}
