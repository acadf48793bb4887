package tortest

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLogLines bounds the lines kept per tor process; older lines are dropped
// (and counted) so a long-lived network cannot grow without bound.
const maxLogLines = 5000

// logBuffer collects the log lines one tor process writes to its stdout. It
// keeps the last maxLogLines complete lines and optionally copies every line,
// prefixed with the node's nickname, to a shared writer.
type logBuffer struct {
	prefix string

	mu      sync.Mutex
	partial []byte
	lines   []string
	dropped int
	tee     io.Writer
	teeMu   *sync.Mutex // shared by every buffer teeing to the same writer
}

func newLogBuffer(prefix string, tee io.Writer, teeMu *sync.Mutex) *logBuffer {
	return &logBuffer{prefix: prefix, tee: tee, teeMu: teeMu}
}

// Write implements io.Writer. It never fails.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data := append(b.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		b.addLine(strings.TrimRight(string(data[:i]), "\r"))
		data = data[i+1:]
	}
	b.partial = append([]byte(nil), data...)
	return len(p), nil
}

func (b *logBuffer) addLine(line string) {
	if len(b.lines) >= maxLogLines {
		n := copy(b.lines, b.lines[len(b.lines)-maxLogLines+1:])
		b.dropped += len(b.lines) - n
		b.lines = b.lines[:n]
	}
	b.lines = append(b.lines, line)
	if b.tee != nil {
		b.teeMu.Lock()
		_, _ = io.WriteString(b.tee, b.prefix+": "+line+"\n")
		b.teeMu.Unlock()
	}
}

// Lines returns a copy of the kept lines, plus the unterminated last line if
// any.
func (b *logBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.lines...)
	if len(b.partial) > 0 {
		out = append(out, string(b.partial))
	}
	return out
}

// Tail returns the last n lines joined with newlines, each indented, for
// error messages.
func (b *logBuffer) Tail(n int) string {
	lines := b.Lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "\t(no log output)"
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// Contains reports whether any kept line contains s.
func (b *logBuffer) Contains(s string) bool {
	for _, l := range b.Lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// Dropped returns how many old lines were discarded.
func (b *logBuffer) Dropped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
