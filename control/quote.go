package control

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidArgument is matched (with errors.Is) by every error returned for
// a caller-supplied value that cannot be sent to tor safely: a NUL byte
// anywhere, or CR, LF, space or another separator in an argument that tor
// does not accept quoted. Such values are refused before anything is written
// to the connection.
var ErrInvalidArgument = errors.New("control: invalid argument")

// QuoteCString returns s as a double-quoted C string the way tor's C-string
// parser (used for SETCONF/RESETCONF values and torrc values) reads it back
// byte for byte: backslash, double quote, CR, LF and TAB become two-character
// escapes and every other byte outside printable ASCII (including UTF-8
// bytes) a three-digit octal escape. The result never contains a CR, LF or
// space that could end an argument or a command.
//
// s must not contain a NUL byte, which tor cannot represent; use
// [checkValue] first when s comes from a user.
func QuoteCString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < ' ' || c >= 0x7f {
				b.WriteByte('\\')
				b.WriteByte('0' + c>>6)
				b.WriteByte('0' + (c>>3)&7)
				b.WriteByte('0' + c&7)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteString returns s as a control-spec QuotedString: in double quotes,
// with only backslash and double quote escaped. Tor reads it back verbatim
// where it parses QuotedStrings (AUTHENTICATE, AUTHCHALLENGE). It must not be
// used for values containing CR or LF, which a QuotedString cannot carry.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// UnquoteCString decodes a quoted string as tor writes it (control-spec
// §2.1.1): the whole of s must be one double-quoted string. The escapes \n,
// \t, \r and one to three octal digits (\0 to \377) are C escapes; a
// backslash before any other character stands for that character. The
// result is the raw bytes (UTF-8 arrives as octal escapes such as
// \303\251); decoding runs left to right, so `\\t` is a backslash followed
// by 't', not a TAB.
func UnquoteCString(s string) (string, error) {
	v, rest, err := readQuoted(s)
	if err != nil {
		return "", err
	}
	if rest != "" {
		return "", fmt.Errorf("control: data after closing quote: %q", trimForError(rest))
	}
	return v, nil
}

// SplitQuoted decodes a space-separated list of values, each a quoted C
// string or a bare word, as tor writes for GETINFO net/listeners/socks and
// net/listeners/control ("127.0.0.1:9050" "unix:/run/tor/socks").
func SplitQuoted(s string) ([]string, error) {
	var out []string
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		if s[0] != '"' {
			v, rest, _ := strings.Cut(s, " ")
			out = append(out, v)
			s = rest
			continue
		}
		v, rest, err := readQuoted(s)
		if err != nil {
			return nil, err
		}
		if rest != "" && rest[0] != ' ' {
			return nil, fmt.Errorf("control: no space after quoted string: %q", trimForError(rest))
		}
		out = append(out, v)
		s = rest
	}
	return out, nil
}

// readQuoted decodes the quoted C string at the start of s (see
// [UnquoteCString]) and returns its value and what follows the closing
// quote. The closing quote is the first one not consumed by an escape.
func readQuoted(s string) (value, rest string, err error) {
	if len(s) == 0 || s[0] != '"' {
		return "", s, errors.New("control: quoted string must start with '\"'")
	}
	// Fast path: no escapes.
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return s[1:i], s[i+1:], nil
		case '\\':
			return readQuotedSlow(s)
		}
	}
	return "", "", errors.New("control: unterminated quoted string")
}

func readQuotedSlow(s string) (value, rest string, err error) {
	b := make([]byte, 0, len(s))
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return string(b), s[i+1:], nil
		}
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch e := s[i]; e {
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			j := i + 1
			for ; j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7'; j++ {
				v = v*8 + int(s[j]-'0')
			}
			if v > 255 {
				return "", "", fmt.Errorf("control: octal escape \\%s out of range", s[i:j])
			}
			b = append(b, byte(v))
			i = j - 1
		default:
			b = append(b, e)
		}
	}
	return "", "", errors.New("control: unterminated quoted string")
}

// decodeValue decodes a value as tor prints it in GETCONF replies and
// CONF_CHANGED events: a value that starts with a double quote is a C string
// (see [UnquoteCString]); any other value is taken verbatim, even when it
// contains quotes or backslashes later on.
func decodeValue(v string) (string, error) {
	if len(v) > 0 && v[0] == '"' {
		return UnquoteCString(v)
	}
	return v, nil
}

// CheckToken reports whether s can be sent as one unquoted argument of a
// control command (a GETINFO key, an event or signal name, an ADD_ONION port
// target, a MAPADDRESS address, an onion service id, ...). It refuses an
// empty string, NUL, CR, LF, space and every other control character or
// separator, and the double quote, which tor would read as the start of a
// quoted string. The returned error matches [ErrInvalidArgument].
func CheckToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidArgument, what)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' {
			return fmt.Errorf("%w: %s %q contains %s", ErrInvalidArgument, what, trimForError(s), describeByte(c))
		}
	}
	return nil
}

// checkValue reports whether s can be sent as a quoted SETCONF, RESETCONF
// or LOADCONF value: anything but a NUL byte, which tor cannot represent.
// The returned error matches [ErrInvalidArgument].
func checkValue(what, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalidArgument, what)
	}
	return nil
}

// checkKeyword checks a configuration option name or other keyword that is
// followed by "=": a token that additionally contains no '=' or backslash.
func checkKeyword(what, s string) error {
	if err := CheckToken(what, s); err != nil {
		return err
	}
	if i := strings.IndexAny(s, `=\`); i >= 0 {
		return fmt.Errorf("%w: %s %q contains %s", ErrInvalidArgument, what, trimForError(s), describeByte(s[i]))
	}
	return nil
}

// checkLine reports whether s can be sent as a raw command line: not empty,
// no CR, LF or NUL. (Its length is checked, with every other command's,
// when it is submitted.)
func checkLine(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty command", ErrInvalidArgument)
	}
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("%w: command line contains %s", ErrInvalidArgument, describeByte(s[i]))
	}
	return nil
}

// MaxCommandLength is the longest command line tor 0.4.9 accepts, without
// its CRLF: 1,048,573 bytes (probed; tor reads a command into a buffer of
// MAX_COMMAND_LINE_LENGTH = 1 MiB that also holds the CRLF and a NUL). A
// multi-line command (+LOADCONF, +HSPOST, +POSTDESCRIPTOR) is read into the
// same buffer as a whole, so its first line, data block and final "."
// together, as written with CRLFs, may take at most MaxCommandLength+2
// bytes. Tor answers a longer command with "500 Line too long." and closes
// the connection (which makes a tor owned by this connection exit), so
// every command is measured before anything is written and refused with a
// *[CommandTooLongError].
const MaxCommandLength = 1<<20 - 3

// maxCommandBytes is the most bytes one command may take on the wire.
const maxCommandBytes = MaxCommandLength + 2

// CommandTooLongError is returned for a command that tor would refuse as
// too long (see [MaxCommandLength]); nothing of it was written and the
// connection is still usable. It matches [ErrInvalidArgument].
type CommandTooLongError struct {
	Command string // keyword, such as "GETINFO" or "+LOADCONF"
	Length  int    // bytes the command would take on the wire, CRLFs included
	Max     int    // the most tor accepts (MaxCommandLength+2)
}

func (e *CommandTooLongError) Error() string {
	return fmt.Sprintf("control: %s command is %d bytes with its line endings, tor accepts at most %d", e.Command, e.Length, e.Max)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *CommandTooLongError) Is(target error) bool { return target == ErrInvalidArgument }

func tooLong(r *request) error {
	return &CommandTooLongError{Command: r.cmd, Length: len(r.wire), Max: maxCommandBytes}
}

func describeByte(c byte) string {
	switch c {
	case 0:
		return "a NUL byte"
	case '\r':
		return "a carriage return (CR)"
	case '\n':
		return "a line feed (LF)"
	case ' ':
		return "a space"
	case '\t':
		return "a tab"
	case '"':
		return "a double quote"
	case '=':
		return "'='"
	case '\\':
		return "a backslash"
	}
	return fmt.Sprintf("the byte 0x%02x", c)
}

func trimForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Arg is one argument of a reply line or event: a positional value (Key is
// empty) or a KEY=VALUE pair. Quoted values are decoded.
type Arg struct {
	Key   string // "" for a positional argument
	Value string
	// Quoted reports whether the value was a quoted string on the wire.
	Quoted bool
}

// ParseArgs splits a reply line or event line into its arguments, the way
// tor writes them: arguments are separated by spaces; a KEY=VALUE argument
// has a key of letters, digits and '_' followed by '='; the value (of a
// keyword or a positional argument) may be a quoted C string, which may
// contain spaces, and is decoded (see [UnquoteCString]). Values are split at
// the first '=' only, so base64 padding stays in the value. Positional
// arguments may contain '=' when they do not start with a keyword
// ("$FP=nick").
func ParseArgs(s string) (Args, error) {
	var args Args
	if n := strings.Count(s, " "); n < len(s) {
		args = make(Args, 0, n+1) // at most one per space, and one
	}
	for {
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		if s == "" {
			return args, nil
		}
		var a Arg
		if k := keywordLen(s); k > 0 {
			a.Key = s[:k]
			s = s[k+1:]
		}
		if len(s) > 0 && s[0] == '"' {
			v, rest, err := readQuoted(s)
			if err != nil {
				return args, err
			}
			if rest != "" && rest[0] != ' ' {
				return args, fmt.Errorf("control: no space after quoted value in %q", trimForError(s))
			}
			a.Value, a.Quoted, s = v, true, rest
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			a.Value, s = s[:end], s[end:]
		}
		args = append(args, a)
	}
}

// keywordLen returns the length of a leading [A-Za-z0-9_]+ keyword when it is
// followed by '=', or 0.
func keywordLen(s string) int {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '=':
			return i
		case !keywordByte[s[i]]:
			return 0
		}
	}
	return 0
}

// Args is a parsed argument list with lookups by keyword.
type Args []Arg

// Positional returns the positional (key-less) arguments in order.
func (as Args) Positional() []string {
	var p []string
	for _, a := range as {
		if a.Key == "" {
			p = append(p, a.Value)
		}
	}
	return p
}

// Get returns the value of the last argument with the given key (keys are
// matched exactly, as tor writes them in a fixed case).
func (as Args) Get(key string) (string, bool) {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Key == key {
			return as[i].Value, true
		}
	}
	return "", false
}

// Map returns the keyword arguments as a map (the last value wins).
func (as Args) Map() map[string]string {
	m := make(map[string]string, len(as))
	for _, a := range as {
		if a.Key != "" {
			m[a.Key] = a.Value
		}
	}
	return m
}
