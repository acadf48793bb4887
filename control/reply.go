package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Line is one line of a reply or event as tor sent it (control-spec §2.3).
// Text and Data are 8-bit clean: a Go string holds any bytes, and tor's
// replies are not necessarily UTF-8.
type Line struct {
	// Code is the three-digit status code of this line. Codes may differ
	// between the lines of one reply (MAPADDRESS mixes 250 and 512).
	Code int
	// Sep is the divider after the code: '-' for a mid line, '+' for a line
	// followed by a data block, ' ' for the end line.
	Sep byte
	// Text is the rest of the line after the divider, without CRLF.
	Text string
	// Data is the decoded data block that follows a '+' line: dot-stuffing
	// removed, lines joined by "\n", no trailing newline (tor always ends
	// the block with a line break, so "abc" and "abc\n" read the same).
	Data string
}

// HasData reports whether the line was followed by a data block.
func (l Line) HasData() bool { return l.Sep == '+' }

// String renders the line as on the wire (without the data block).
func (l Line) String() string { return fmt.Sprintf("%03d%c%s", l.Code, l.Sep, l.Text) }

// Reply is a complete reply (or event) from tor: one or more lines, the last
// of which is the end line.
type Reply struct {
	Lines []Line
}

// Code returns the status code of the end line, which decides whether the
// reply is a success (2xx) or an error.
func (r *Reply) Code() int {
	if r == nil || len(r.Lines) == 0 {
		return 0
	}
	return r.Lines[len(r.Lines)-1].Code
}

// OK reports whether the reply's status is success (2xx).
func (r *Reply) OK() bool { c := r.Code(); return c >= 200 && c < 300 }

// Text returns the text of the end line.
func (r *Reply) Text() string {
	if r == nil || len(r.Lines) == 0 {
		return ""
	}
	return r.Lines[len(r.Lines)-1].Text
}

// String renders the reply's lines as on the wire, data blocks included
// (joined by "\n", without dot-stuffing).
func (r *Reply) String() string {
	var b strings.Builder
	for i, l := range r.Lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l.String())
		if l.Sep == '+' {
			b.WriteByte('\n')
			b.WriteString(l.Data)
			b.WriteString("\n.")
		}
	}
	return b.String()
}

// DefaultMaxReplySize is the default cap on the size of one reply or event
// (all its lines and data blocks). Tor's largest ordinary replies, such as
// GETINFO ns/all or md/all, are a few tens of megabytes at most; a reply
// beyond the cap breaks the connection with an error matching ErrProtocol
// instead of exhausting memory. Change it with [WithMaxReplySize].
const DefaultMaxReplySize = 128 << 20

// ErrProtocol is matched by errors caused by a reply that does not follow
// the control protocol (a bad line prefix, an unexpected reply, a reply
// larger than the configured cap). The connection is unusable afterwards.
var ErrProtocol = errors.New("control: protocol error")

// replyReader parses replies from a byte stream.
type replyReader struct {
	br   *bufio.Reader
	max  int
	long []byte // scratch space for lines longer than the bufio buffer
	data []byte // scratch space for data blocks
	n    int    // bytes read for the current reply
}

func newReplyReader(r io.Reader, max int) *replyReader {
	if max <= 0 {
		max = DefaultMaxReplySize
	}
	return &replyReader{br: bufio.NewReaderSize(r, 32<<10), max: max}
}

// readLine returns the next line without its line ending (CRLF, or a bare
// LF, which tor never sends but some fakes do). A lone CR inside the line is
// data. The slice is valid until the next call.
func (r *replyReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if r.n+len(r.long) > r.max {
				return nil, fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, r.max)
			}
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	r.n += len(line)
	if r.n > r.max {
		return nil, fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, r.max)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// ReadReply reads one complete reply.
func (r *replyReader) ReadReply() (*Reply, error) {
	r.n = 0
	// Don't hold on to the scratch space of a huge reply.
	if cap(r.long) > 1<<20 {
		r.long = nil
	}
	if cap(r.data) > 1<<20 {
		r.data = nil
	}
	reply := &Reply{Lines: make([]Line, 0, 2)}
	for {
		l, err := r.readLine()
		if err != nil {
			if len(reply.Lines) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(l) < 4 || !isDigit(l[0]) || !isDigit(l[1]) || !isDigit(l[2]) {
			return nil, fmt.Errorf("%w: bad reply line %q", ErrProtocol, trimForError(string(l)))
		}
		line := Line{
			Code: int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0'),
			Sep:  l[3],
			Text: string(l[4:]),
		}
		switch line.Sep {
		case ' ':
			reply.Lines = append(reply.Lines, line)
			return reply, nil
		case '-':
		case '+':
			if line.Data, err = r.readData(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: bad divider %q in reply line %q", ErrProtocol, line.Sep, trimForError(string(l)))
		}
		reply.Lines = append(reply.Lines, line)
	}
}

// readData reads a data block up to its terminating "." line and removes
// the dot-stuffing.
func (r *replyReader) readData() (string, error) {
	r.data = r.data[:0]
	first := true
	for {
		l, err := r.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if len(l) == 1 && l[0] == '.' {
			return string(r.data), nil
		}
		if len(l) > 0 && l[0] == '.' {
			l = l[1:]
		}
		if !first {
			r.data = append(r.data, '\n')
		}
		first = false
		r.data = append(r.data, l...)
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// appendCommand appends a command line and, for a data command, its
// dot-stuffed data block, each line ending in CRLF.
func appendCommand(b []byte, line string, data *string) []byte {
	b = append(b, line...)
	b = append(b, '\r', '\n')
	if data == nil {
		return b
	}
	d := *data
	d = strings.TrimSuffix(d, "\n")
	d = strings.TrimSuffix(d, "\r")
	if *data != "" {
		for {
			i := strings.IndexByte(d, '\n')
			l := d
			if i >= 0 {
				l = d[:i]
			}
			l = strings.TrimSuffix(l, "\r")
			if len(l) > 0 && l[0] == '.' {
				b = append(b, '.')
			}
			b = append(b, l...)
			b = append(b, '\r', '\n')
			if i < 0 {
				break
			}
			d = d[i+1:]
		}
	}
	return append(b, '.', '\r', '\n')
}
