package control

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unsafe"
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

// DefaultMaxReplySize is the default cap on the memory one reply or event
// may take while it is read: its bytes plus a fixed cost per reply line
// (see [WithMaxReplySize]). A reply beyond the cap breaks the connection
// with an error matching ErrProtocol instead of exhausting memory.
//
// How it was chosen: the largest replies tor sends are whole directory
// documents. On the public network (about 8,000 relays) GETINFO ns/all is
// about 8,000 router status entries of 250-450 bytes (r, a, s, v, pr, w, p
// lines), 2-4 MB; md/all is about 8,000 microdescriptors of 400-1,100 bytes
// (ntor key, family, policy summary, ed25519 id; more with an RSA onion
// key), 3-9 MB; desc/all-recent, server descriptors kept only with
// FetchUselessDescriptors, about 8,000 × 2-3 KB, 16-24 MB. 32 MiB holds
// the largest of these with room for the network to grow by a third.
//
// What a reply costs: a big reply is read in 64 KiB chunks that are joined
// once, at its end, into one buffer of its exact size, which the caller
// gets without a further copy. So a reply of n bytes costs about 2n while
// it is joined and n afterwards, and a hostile reply refused at the cap
// costs about the cap.
const DefaultMaxReplySize = 32 << 20

// lineCost is what each reply line costs in memory beyond its bytes (its
// Line and offsets), charged against the reply cap so that a reply of
// millions of empty lines cannot cost many times the cap.
const lineCost = 96

// ErrProtocol is matched by errors caused by a reply that does not follow
// the control protocol (a bad line prefix, an unexpected reply, a reply
// larger than the configured cap). The connection is unusable afterwards.
var ErrProtocol = errors.New("control: protocol error")

// lineOff locates one reply line inside a replyBuf's bytes.
type lineOff struct {
	code           int
	sep            byte
	ts, te, ds, de int // text and data block bounds in b
}

// replyBuf holds one reply as read: the bytes of every line (and of its
// decoded data block) in one buffer, and where each line is. It is reused
// from reply to reply.
type replyBuf struct {
	b       []byte
	offs    []lineOff
	lines   []Line
	chunks  [][]byte // earlier parts of a big reply (see lineStart)
	flushed int      // bytes in chunks
}

// replyReader parses replies from a byte stream.
type replyReader struct {
	br  *bufio.Reader
	max int
	n   int // memory charged to the current reply
}

func newReplyReader(r io.Reader, max int) *replyReader {
	if max <= 0 {
		max = DefaultMaxReplySize
	}
	return &replyReader{br: bufio.NewReaderSize(r, 32<<10), max: max}
}

func (r *replyReader) tooLarge() error {
	return fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, r.max)
}

// grow makes room for n more bytes in b. It doubles the capacity but never
// beyond what the cap allows, so a reply at the cap costs at most the cap
// plus the previous half-size buffer.
func (r *replyReader) grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b
	}
	c := 2 * cap(b)
	if c < 512 {
		c = 512
	}
	if c < len(b)+n {
		c = len(b) + n
	}
	if lim := r.max + 4; c > lim && len(b)+n <= lim {
		c = lim
	}
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// appendLine appends the next line, without its line ending (CRLF, or a
// bare LF, which tor never sends but some fakes do), to b. A lone CR inside
// the line is data.
func (r *replyReader) appendLine(b []byte) ([]byte, error) {
	start := len(b)
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.n += len(chunk)
		if r.n > r.max {
			return b, r.tooLarge()
		}
		b = r.grow(b, len(chunk))
		b = append(b, chunk...)
		switch err {
		case nil:
			b = b[:len(b)-1]
			if len(b) > start && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return b, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(b) > start {
				err = io.ErrUnexpectedEOF
			}
		}
		return b, err
	}
}

// A big reply is read in chunks: once the buffer has chunkSize bytes of
// room and less than chunkSlack of it left, it is put aside at the next
// line and a new one started, so that no byte is copied while the reply
// grows and a reply refused at the cap has cost about the cap. When the
// reply is complete its chunks are joined into one buffer of its exact
// size (a data block may span chunks).
const (
	chunkSize  = 64 << 10
	chunkSlack = 4 << 10
)

// pos returns the position of the next byte in the reply, chunks included.
func (rb *replyBuf) pos() int { return rb.flushed + len(rb.b) }

// lineStart puts the buffer aside as a chunk when it is nearly full.
func (rb *replyBuf) lineStart() {
	if cap(rb.b) >= chunkSize && cap(rb.b)-len(rb.b) < chunkSlack {
		rb.chunks = append(rb.chunks, rb.b)
		rb.flushed += len(rb.b)
		rb.b = make([]byte, 0, chunkSize)
	}
}

// join makes rb.b the whole reply.
func (rb *replyBuf) join() {
	if len(rb.chunks) == 0 {
		return
	}
	all := make([]byte, 0, rb.pos())
	for _, c := range rb.chunks {
		all = append(all, c...)
	}
	rb.b = append(all, rb.b...)
	clear(rb.chunks)
	rb.chunks, rb.flushed = rb.chunks[:0], 0
}

// bufferedEventLine returns the text (after "650 ", without the line
// ending) of the next reply when it is a one-line 650 event already wholly
// in the read buffer, and n, the bytes to discard once it is used; n is 0
// otherwise (read it with readInto). The text is valid until the next read.
func (r *replyReader) bufferedEventLine() (text []byte, n int) {
	b, _ := r.br.Peek(r.br.Buffered())
	if len(b) < 5 || b[0] != '6' || b[1] != '5' || b[2] != '0' || b[3] != ' ' {
		return nil, 0
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 || i+1+lineCost > r.max { // incomplete, or readInto refuses it
		return nil, 0
	}
	text = b[4:i]
	if len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[:len(text)-1]
	}
	return text, i + 1
}

// discard drops n bytes of the read buffer (see bufferedEventLine).
func (r *replyReader) discard(n int) { r.br.Discard(n) }

// readInto reads one complete reply into rb, reusing its buffers.
func (r *replyReader) readInto(rb *replyBuf) error {
	r.n = 0
	rb.b, rb.offs, rb.lines = rb.b[:0], rb.offs[:0], rb.lines[:0]
	clear(rb.chunks)
	rb.chunks, rb.flushed = rb.chunks[:0], 0
	err := r.readLines(rb)
	if err != nil {
		clear(rb.chunks)
		rb.chunks, rb.flushed = rb.chunks[:0], 0
		return err
	}
	rb.join()
	return nil
}

func (r *replyReader) readLines(rb *replyBuf) error {
	for {
		rb.lineStart()
		start := len(rb.b)
		var err error
		if rb.b, err = r.appendLine(rb.b); err != nil {
			if len(rb.offs) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if r.n += lineCost; r.n > r.max {
			return r.tooLarge()
		}
		l := rb.b[start:]
		if len(l) < 4 || !isDigit(l[0]) || !isDigit(l[1]) || !isDigit(l[2]) {
			return fmt.Errorf("%w: bad reply line %q", ErrProtocol, trimForError(string(l)))
		}
		off := lineOff{
			code: int(l[0]-'0')*100 + int(l[1]-'0')*10 + int(l[2]-'0'),
			sep:  l[3],
			ts:   rb.flushed + start + 4,
			te:   rb.pos(),
		}
		switch off.sep {
		case ' ':
			rb.offs = append(rb.offs, off)
			return nil
		case '-':
		case '+':
			off.ds = rb.pos()
			if err = r.appendData(rb); err != nil {
				return err
			}
			off.de = rb.pos()
		default:
			return fmt.Errorf("%w: bad divider %q in reply line %q", ErrProtocol, off.sep, trimForError(string(l)))
		}
		rb.offs = append(rb.offs, off)
	}
}

// appendData appends a data block, up to its terminating "." line, to rb:
// dot-stuffing removed, lines joined by "\n", no trailing newline.
func (r *replyReader) appendData(rb *replyBuf) error {
	first := true
	for {
		rb.lineStart()
		ls := len(rb.b)
		var err error
		if rb.b, err = r.appendLine(rb.b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		l := rb.b[ls:]
		if len(l) == 1 && l[0] == '.' {
			rb.b = rb.b[:ls]
			return nil
		}
		if len(l) > 0 && l[0] == '.' {
			copy(l, l[1:])
			rb.b = rb.b[:len(rb.b)-1]
		}
		if !first {
			// Join to the previous line: insert "\n" before this one.
			rb.b = append(rb.b, 0)
			copy(rb.b[ls+1:], rb.b[ls:])
			rb.b[ls] = '\n'
		}
		first = false
	}
}

// view fills rb.lines with Lines whose strings point into rb.b (no copy):
// valid only while rb.b is neither reused nor changed.
func (rb *replyBuf) view() []Line {
	s := unsafe.String(unsafe.SliceData(rb.b), len(rb.b))
	rb.lines = fillLines(rb.lines[:0], s, rb.offs)
	return rb.lines
}

func fillLines(lines []Line, s string, offs []lineOff) []Line {
	for _, o := range offs {
		l := Line{Code: o.code, Sep: o.sep, Text: s[o.ts:o.te]}
		if o.sep == '+' {
			l.Data = s[o.ds:o.de]
		}
		lines = append(lines, l)
	}
	return lines
}

// bigReply is the size from which a reply's buffer is handed out as is
// (and replaced) instead of copied.
const bigReply = 64 << 10

// owned returns the bytes of rb as a string the caller may keep: a copy
// for a small reply, or rb's own buffer (which rb gives up) for a big one.
func (rb *replyBuf) owned() string {
	if len(rb.b) < bigReply {
		return string(rb.b)
	}
	s := unsafe.String(unsafe.SliceData(rb.b), len(rb.b))
	rb.b = nil
	return s
}

// reply returns an owned *Reply.
func (rb *replyBuf) reply() *Reply {
	s := rb.owned()
	return &Reply{Lines: fillLines(make([]Line, 0, len(rb.offs)), s, rb.offs)}
}

// release drops buffers that grew large, so that one huge reply does not
// stay in memory.
func (rb *replyBuf) release() {
	if cap(rb.b) > bigReply {
		rb.b = nil
	}
	if cap(rb.offs) > 1024 {
		rb.offs = nil
	}
	if cap(rb.lines) > 1024 {
		rb.lines = nil
	}
}

// ReadReply reads one complete reply into memory of its own.
func (r *replyReader) ReadReply() (*Reply, error) {
	var rb replyBuf
	if err := r.readInto(&rb); err != nil {
		return nil, err
	}
	return rb.reply(), nil
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

// replyComplete reports whether b starts with a complete reply (or with a
// line that is no reply line at all, which readInto refuses at once), so
// that reading it cannot block.
func replyComplete(b []byte) bool {
	inData := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		l := b[:i]
		b = b[i+1:]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if inData {
			inData = len(l) != 1 || l[0] != '.'
			continue
		}
		if len(l) < 4 {
			return true
		}
		switch l[3] {
		case '-':
		case '+':
			inData = true
		default: // ' ' ends the reply; anything else is refused
			return true
		}
	}
}
