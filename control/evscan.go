package control

import (
	"fmt"
	"strings"
	"time"
)

// evArgs is an event line split into its arguments without allocating (the
// values are substrings of the line, or decoded quoted strings): the typed
// parsers use it, and build only the map and slices their result keeps.
// It follows the grammar of [ParseArgs].
type evArgs struct {
	posBuf [8]string
	npos   int
	kvBuf  [16]Arg
	nkv    int
	morePs []string // when there are more than len(posBuf)
	moreKV []Arg
}

// scan splits s into a.
func (a *evArgs) scan(s string) error {
	a.npos, a.nkv, a.morePs, a.moreKV = 0, 0, nil, nil
	if err := a.split(s); err != nil {
		return err
	}
	return nil
}

// ps returns the positional arguments.
func (a *evArgs) ps() []string {
	if a.morePs != nil {
		return a.morePs
	}
	return a.posBuf[:a.npos]
}

// kvs returns the keyword arguments.
func (a *evArgs) kvs() []Arg {
	if a.moreKV != nil {
		return a.moreKV
	}
	return a.kvBuf[:a.nkv]
}

func (a *evArgs) split(s string) error {
	for {
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		if s == "" {
			return nil
		}
		var key string
		if k := keywordLen(s); k > 0 {
			key = s[:k]
			s = s[k+1:]
		}
		var v string
		quoted := len(s) > 0 && s[0] == '"'
		if quoted {
			var rest string
			var err error
			if v, rest, err = readQuoted(s); err != nil {
				return err
			}
			if rest != "" && rest[0] != ' ' {
				return fmt.Errorf("control: no space after quoted value in %q", trimForError(s))
			}
			s = rest
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		switch {
		case key == "" && a.morePs != nil:
			a.morePs = append(a.morePs, v)
		case key == "" && a.npos == len(a.posBuf):
			a.morePs = append(append([]string(nil), a.posBuf[:]...), v)
		case key == "":
			a.posBuf[a.npos] = v
			a.npos++
		case a.moreKV != nil:
			a.moreKV = append(a.moreKV, Arg{Key: key, Value: v, Quoted: quoted})
		case a.nkv == len(a.kvBuf):
			a.moreKV = append(append([]Arg(nil), a.kvBuf[:]...), Arg{Key: key, Value: v, Quoted: quoted})
		default:
			a.kvBuf[a.nkv] = Arg{Key: key, Value: v, Quoted: quoted}
			a.nkv++
		}
	}
}

// get returns the value of the last keyword argument key ("" if none).
func (a *evArgs) get(key string) string {
	kv := a.kvs()
	for i := len(kv) - 1; i >= 0; i-- {
		if kv[i].Key == key {
			return kv[i].Value
		}
	}
	return ""
}

// m returns the keyword arguments as a map (the last value wins), as
// Args.Map does.
func (a *evArgs) m() map[string]string {
	kvs := a.kvs()
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// scanEvent checks ev's type against typ and scans its first line's
// arguments into a.
func scanEvent(a *evArgs, ev *Event, typ ...string) error {
	if len(typ) > 0 {
		ok := false
		for _, t := range typ {
			ok = ok || ev.Type == t
		}
		if !ok {
			return fmt.Errorf("%w: got a %s event, want %s", ErrMalformedEvent, ev.Type, strings.Join(typ, " or "))
		}
	}
	if err := a.scan(ev.Text()); err != nil {
		return malformed(ev, err.Error())
	}
	return nil
}

// parseTime parses tor's ISOTime ("2012-11-19 00:50:13") and ISOTime2
// ("2026-11-22T06:05:03.131771") forms, in UTC; the zero time if s is
// neither.
func parseTime(s string) time.Time {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	y, mo, d, h, mi, se := num(s[0:4]), num(s[5:7]), num(s[8:10]), num(s[11:13]), num(s[14:16]), num(s[17:19])
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59 {
		return time.Time{}
	}
	ns := 0
	if len(s) > 19 {
		f := s[20:]
		if s[19] != '.' || len(f) == 0 || len(f) > 9 || num(f) < 0 {
			return time.Time{}
		}
		ns = num(f)
		for i := len(f); i < 9; i++ {
			ns *= 10
		}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, time.UTC)
	if t.Day() != d { // 31 April, 29 February of a common year
		return time.Time{}
	}
	return t
}
