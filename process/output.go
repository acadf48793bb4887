package process

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

const (
	defaultLastLines = 100
	maxLineLen       = 2048
	maxProblemLines  = 8
)

// output collects tor's stdout and stderr: a ring of recent lines, a ring
// of its recent [warn] and [err] lines, an optional copy to the user's
// writer and an optional slog logger.
type output struct {
	mu       sync.Mutex
	partial  []byte
	lines    []string // ring
	next     int
	full     bool
	problems []string // last warn/err lines, oldest first
	w        io.Writer
	logger   *slog.Logger
}

func newOutput(size int, w io.Writer, logger *slog.Logger) *output {
	if size <= 0 {
		size = defaultLastLines
	}
	return &output{lines: make([]string, size), w: w, logger: logger}
}

// Write implements io.Writer; it never fails (a failing user writer is
// dropped, tor must not block on it).
func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w != nil {
		if _, err := o.w.Write(b); err != nil {
			o.w = nil
		}
	}
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			o.partial = append(o.partial, b...)
			if len(o.partial) > maxLineLen {
				o.addLine(string(o.partial[:maxLineLen]))
				o.partial = o.partial[:0]
			}
			break
		}
		line := b[:i]
		if len(o.partial) > 0 {
			line = append(o.partial, line...)
			o.partial = o.partial[:0]
		}
		if len(line) > maxLineLen {
			line = line[:maxLineLen]
		}
		o.addLine(string(line))
		b = b[i+1:]
	}
	return n, nil
}

// flush records a last line without newline.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.addLine(string(o.partial))
		o.partial = nil
	}
}

func (o *output) addLine(line string) {
	line = strings.TrimRight(line, "\r")
	line = strings.ToValidUTF8(line, "\uFFFD")
	o.lines[o.next] = line
	o.next = (o.next + 1) % len(o.lines)
	if o.next == 0 {
		o.full = true
	}
	level := lineLevel(line)
	if level >= slog.LevelWarn && !harmless(line) {
		// A warning tor repeats (it logs some at each config pass) is
		// kept once, at its latest place.
		msg := lineMessage(line)
		o.problems = slices.DeleteFunc(o.problems, func(p string) bool { return lineMessage(p) == msg })
		o.problems = append(o.problems, line)
		if len(o.problems) > maxProblemLines {
			o.problems = o.problems[1:]
		}
	}
	if o.logger != nil {
		o.logger.Log(context.Background(), level, lineMessage(line), "source", "tor")
	}
}

// last returns the recorded lines, oldest first.
func (o *output) last() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	if o.full {
		out = append(out, o.lines[o.next:]...)
	}
	out = append(out, o.lines[:o.next]...)
	return out
}

// problemLines returns tor's last [warn]/[err] lines, or, when it printed
// none, its last few lines of any kind.
func (o *output) problemLines() []string {
	o.mu.Lock()
	ps := append([]string(nil), o.problems...)
	o.mu.Unlock()
	if len(ps) > 0 {
		return ps
	}
	all := o.last()
	if len(all) > 3 {
		all = all[len(all)-3:]
	}
	return all
}

// lineLevel maps tor's "[notice]"-style severity to a slog level.
func lineLevel(line string) slog.Level {
	switch {
	case strings.Contains(line, "[err]"):
		return slog.LevelError
	case strings.Contains(line, "[warn]"):
		return slog.LevelWarn
	case strings.Contains(line, "[debug]"), strings.Contains(line, "[info]"):
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// lineMessage drops tor's timestamp and severity ("Nov 22 08:11:26.483
// [notice] Bootstrapped 0%" → "Bootstrapped 0%").
func lineMessage(line string) string {
	if i := strings.Index(line, "] "); i >= 0 && strings.LastIndexByte(line[:i], '[') >= 0 {
		return line[i+2:]
	}
	return line
}

// harmless reports warnings that say nothing about a failure.
func harmless(line string) bool {
	return strings.Contains(line, "You are running Tor as root")
}
