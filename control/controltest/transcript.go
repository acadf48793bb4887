package controltest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Transcript is a scripted control session. Its text format has one item
// per line:
//
//	# a comment; blank lines are ignored
//	C: GETINFO version      the client must send exactly this line
//	C~ ^AUTHCHALLENGE SAFECOOKIE [0-9A-F]{64}$
//	                        the client must send a line matching this regexp
//	S: 250-version=0.4.9.11 the server sends this line and CRLF
//	S! "250 a\rb\r\n"       the server sends these bytes (a Go string literal),
//	                        nothing appended: for lone CRs, bare LFs, 8-bit
//	                        bytes or a reply cut short
//	!wait NAME              the server waits until Release(NAME) is called
//	!close                  the server closes the connection
//	!eof                    the client must close the connection now
//
// The server sends S lines as soon as the C lines before them have been
// received, so events and replies come exactly where the transcript puts
// them. After the last item the server waits for the client to close the
// connection; anything else it sends is a mismatch. Every connection to a
// transcript server plays the whole transcript.
type Transcript struct {
	Name  string
	items []item

	mu    sync.Mutex
	gates map[string]chan struct{}
	errs  []error
}

type item struct {
	line int
	kind byte // 'C' exact, '~' regexp, 'S' line, '!' raw bytes, 'w' wait, 'x' close, 'e' eof
	text string
	re   *regexp.Regexp
}

// LoadTranscript reads a transcript file.
func LoadTranscript(path string) (*Transcript, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseTranscript(path, b)
}

// ParseTranscript parses transcript text; name is used in errors.
func ParseTranscript(name string, text []byte) (*Transcript, error) {
	tr := &Transcript{Name: name, gates: map[string]chan struct{}{}}
	for i, line := range strings.Split(string(text), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		it := item{line: n}
		switch {
		case strings.HasPrefix(line, "C: ") || line == "C:":
			it.kind, it.text = 'C', strings.TrimPrefix(strings.TrimPrefix(line, "C:"), " ")
		case strings.HasPrefix(line, "C~ "):
			re, err := regexp.Compile(line[3:])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			it.kind, it.re = '~', re
		case strings.HasPrefix(line, "S: ") || line == "S:":
			it.kind, it.text = 'S', strings.TrimPrefix(strings.TrimPrefix(line, "S:"), " ")
		case strings.HasPrefix(line, "S! "):
			s, err := strconv.Unquote(line[3:])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad S! string: %w", name, n, err)
			}
			it.kind, it.text = '!', s
		case strings.HasPrefix(line, "!wait "):
			it.kind, it.text = 'w', strings.TrimSpace(line[6:])
			tr.gates[it.text] = make(chan struct{})
		case line == "!close":
			it.kind = 'x'
		case line == "!eof":
			it.kind = 'e'
		default:
			return nil, fmt.Errorf("%s:%d: unknown transcript line %q", name, n, line)
		}
		tr.items = append(tr.items, it)
	}
	return tr, nil
}

// Release opens the gate of "!wait name" lines.
func (tr *Transcript) Release(name string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ch, ok := tr.gates[name]
	if !ok {
		panic(fmt.Sprintf("controltest: transcript %s has no !wait %s", tr.Name, name))
	}
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// Err returns the mismatches seen so far, joined.
func (tr *Transcript) Err() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return errors.Join(tr.errs...)
}

func (tr *Transcript) fail(err error) {
	tr.mu.Lock()
	tr.errs = append(tr.errs, err)
	tr.mu.Unlock()
}

// ServeControl plays the transcript on c, recording mismatches (see Err).
func (tr *Transcript) ServeControl(c *Conn) {
	if err := tr.Play(c); err != nil {
		tr.fail(err)
	}
}

// Play plays the transcript on c and returns the first mismatch.
func (tr *Transcript) Play(c *Conn) error {
	var out bytes.Buffer
	flush := func() error {
		if out.Len() == 0 {
			return nil
		}
		_, err := c.Write(out.Bytes())
		out.Reset()
		return err
	}
	for _, it := range tr.items {
		switch it.kind {
		case 'S':
			out.WriteString(it.text)
			out.WriteString("\r\n")
			continue
		case '!':
			out.WriteString(it.text)
			continue
		}
		if err := flush(); err != nil {
			return fmt.Errorf("%w: %s:%d: write: %v", ErrTranscript, tr.Name, it.line, err)
		}
		switch it.kind {
		case 'C', '~':
			got, err := c.ReadLine()
			if err != nil {
				return fmt.Errorf("%w: %s:%d: expected a command, client sent none (%v)", ErrTranscript, tr.Name, it.line, err)
			}
			if it.kind == 'C' && got != it.text {
				return fmt.Errorf("%w: %s:%d: client sent %q, want %q", ErrTranscript, tr.Name, it.line, got, it.text)
			}
			if it.kind == '~' && !it.re.MatchString(got) {
				return fmt.Errorf("%w: %s:%d: client sent %q, want a match of %q", ErrTranscript, tr.Name, it.line, got, it.re)
			}
		case 'w':
			tr.mu.Lock()
			ch := tr.gates[it.text]
			tr.mu.Unlock()
			<-ch
		case 'x':
			c.Close()
			return nil
		case 'e':
			if got, err := c.ReadLine(); err != io.EOF {
				return fmt.Errorf("%w: %s:%d: expected the client to close, got %q (%v)", ErrTranscript, tr.Name, it.line, got, err)
			}
			return nil
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("%w: %s: write: %v", ErrTranscript, tr.Name, err)
	}
	got, err := c.ReadLine()
	if err == nil {
		return fmt.Errorf("%w: %s: client sent %q after the end of the transcript", ErrTranscript, tr.Name, got)
	}
	return nil
}

// NewTranscriptServer loads the transcript at path and serves it on a TCP
// port of 127.0.0.1. The server is closed in t.Cleanup, and any mismatch
// between the client and the transcript fails t.
func NewTranscriptServer(t testing.TB, path string) (*Server, *Transcript) {
	t.Helper()
	tr, err := LoadTranscript(path)
	if err != nil {
		t.Fatalf("controltest: %v", err)
	}
	srv := NewServer(tr)
	t.Cleanup(func() {
		tr.releaseAll()
		srv.Close()
		if err := tr.Err(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return srv, tr
}

func (tr *Transcript) releaseAll() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, ch := range tr.gates {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// Record wraps a client connection to a real control port and writes a
// transcript of the session to w: every line the client writes as "C:"
// and every line it reads as "S:" (or "S!" with a quoted string when the
// line is not printable). Use it to capture transcripts from a real tor;
// issue commands one at a time, so that the recorded order of commands and
// replies is the order in which they caused each other.
func Record(nc net.Conn, w io.Writer) net.Conn {
	return &recorder{Conn: nc, w: w}
}

type recorder struct {
	net.Conn
	mu     sync.Mutex
	w      io.Writer
	in     []byte // partial line read
	outBuf []byte // partial line written
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.in = r.emit(r.in, p[:n], "S")
	if err == io.EOF {
		fmt.Fprintf(r.w, "!close\n")
	}
	r.mu.Unlock()
	return n, err
}

func (r *recorder) Write(p []byte) (int, error) {
	// Log before writing, so that the reply cannot be logged first.
	r.mu.Lock()
	r.outBuf = r.emit(r.outBuf, p, "C")
	r.mu.Unlock()
	return r.Conn.Write(p)
}

func (r *recorder) emit(buf, p []byte, who string) []byte {
	buf = append(buf, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return buf
		}
		line := buf[:i+1]
		text, ok := bytes.CutSuffix(line, []byte("\r\n"))
		if ok && printable(text) {
			fmt.Fprintf(r.w, "%s: %s\n", who, text)
		} else if who == "S" {
			fmt.Fprintf(r.w, "S! %s\n", strconv.Quote(string(line)))
		} else {
			fmt.Fprintf(r.w, "C: %s\n", bytes.TrimRight(line, "\r\n"))
		}
		buf = buf[i+1:]
	}
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
