package control

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// evScan walks the arguments of an event line, one at a time, without
// allocating: keys and unquoted values are substrings of the line, quoted
// values are decoded (a substring too when they hold no escape). It
// follows the grammar of [ParseArgs]. The typed parsers read each argument
// straight into their result's fields, so no list or map of the arguments
// is ever built.
type evScan struct {
	s   string
	err error
}

// keywordByte[c] reports whether c may be in a keyword: [A-Za-z0-9_].
var keywordByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	return t
}()

// next returns the next argument (key is "" for a positional one). It
// returns ok false at the end of the line or on a malformed quoted value,
// which leaves the reason in sc.err.
func (sc *evScan) next() (key, val string, ok bool) {
	s := sc.s
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if s == "" {
		sc.s = ""
		return "", "", false
	}
	// One pass over the token: a keyword ([A-Za-z0-9_]+) followed by '='
	// is the key; at the first other byte the token is a value, whose end
	// IndexByte finds.
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if keywordByte[c] {
			continue
		}
		if c == '=' && i > 0 {
			key, s, i = s[:i], s[i+1:], 0
		}
		break
	}
	if i > 0 && (i == len(s) || s[i] == ' ') { // a bare word
		sc.s = s[i:]
		return key, s[:i], true
	}
	if len(s) > 0 && s[0] == '"' {
		v, rest, err := readQuoted(s)
		if err == nil && rest != "" && rest[0] != ' ' {
			err = fmt.Errorf("control: no space after quoted value in %q", trimForError(s))
		}
		if err != nil {
			sc.s, sc.err = "", err
			return "", "", false
		}
		sc.s = rest
		return key, v, true
	}
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	sc.s = s[end:]
	return key, s[:end], true
}

// scanPositional scans the whole of ev's arguments and returns its first
// len(dst) positional arguments in dst and how many positional arguments
// there were; keyword arguments are skipped.
func scanPositional(ev *Event, dst []string) (int, error) {
	sc := evScan{s: ev.Text()}
	n := 0
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		if k == "" {
			if n < len(dst) {
				dst[n] = v
			}
			n++
		}
	}
	if sc.err != nil {
		return 0, malformed(ev, sc.err.Error())
	}
	return n, nil
}

// wantType returns the error for an event of another type than the parser
// is for.
func wantType(ev *Event, want string) error {
	return fmt.Errorf("%w: got a %s event, want %s", ErrMalformedEvent, ev.Type, want)
}

// atou parses a decimal count, 0 if s is not one.
func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// atoi parses a small decimal number, 0 if s is not one.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
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
	if d > 30 || (mo == 2 && d > 28) {
		leap := y%4 == 0 && (y%100 != 0 || y%400 == 0)
		if max := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[mo]; d > max || (mo == 2 && d == 29 && !leap) {
			return time.Time{} // 31 April, 29 February of a common year
		}
	}
	// Days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's
	// days_from_civil): time.Date would look the UTC location up.
	if mo <= 2 {
		y--
	}
	era := y / 400
	if y < 0 { // January or February of year 0
		era = (y - 399) / 400
	}
	yoe := y - era*400
	doy := (153*((mo+9)%12)+2)/5 + d - 1
	days := era*146097 + yoe*365 + yoe/4 - yoe/100 + doy - 719468
	return time.Unix(int64(days)*86400+int64(h*3600+mi*60+se), int64(ns)).UTC()
}
