package balance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// stopGrace is how long a stopped onionbalance has to exit after SIGTERM
// (it closes its control connection and exits in well under a second)
// before it is killed.
const stopGrace = 5 * time.Second

// keepLines is the number of onionbalance's last output lines kept for
// ExitError.
const keepLines = 20

// ExitError reports that onionbalance exited on its own (it does so at
// start on a bad configuration or a tor it cannot use).
type ExitError struct {
	// Err is how it exited (an *exec.ExitError, usually).
	Err error
	// Lines are its last output lines.
	Lines []string
}

func (e *ExitError) Error() string {
	s := "balance: onionbalance exited: " + e.Err.Error()
	if len(e.Lines) > 0 {
		s += "; its last lines:\n\t" + strings.Join(e.Lines, "\n\t")
	}
	return s
}

func (e *ExitError) Unwrap() error { return e.Err }

// run is one onionbalance process.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	err    error         // how it exited, set before exited is closed
	wg     sync.WaitGroup

	mu       sync.Mutex
	lines    []string // the last keepLines lines
	stopping bool     // exit expected: stop was called

	stopOnce sync.Once
}

// logLine matches onionbalance's log format: "2026-12-01 11:17:00,139
// [WARNING]: message".
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[([A-Z]+)\]: (.*)$`)

// levels maps Python's logging levels to slog's.
var levels = map[string]slog.Level{
	"DEBUG":    slog.LevelDebug,
	"INFO":     slog.LevelInfo,
	"WARNING":  slog.LevelWarn,
	"ERROR":    slog.LevelError,
	"CRITICAL": slog.LevelError,
}

// verbosity returns onionbalance's -v level for what logger shows.
func verbosity(logger *slog.Logger) string {
	ctx := context.Background()
	switch {
	case logger.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case logger.Enabled(ctx, slog.LevelInfo):
		return "info"
	}
	return "warning"
}

// environ returns this program's environment for onionbalance, without
// the ONIONBALANCE_* variables that would change what the command line
// says (control socket, configuration, log level, status socket), and with
// Python's output unbuffered so that lines arrive as they are written.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ONIONBALANCE_") || strings.HasPrefix(kv, "PYTHONUNBUFFERED=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONUNBUFFERED=1")
}

// startRun starts onionbalance with args, the master key file on
// descriptor 3 (/dev/fd/3) and the configuration on descriptor 4
// (/dev/fd/4), both through pipes, and its output going to logger.
func startRun(path string, args []string, keyFile, config []byte, logger *slog.Logger) (*run, error) {
	if !supported {
		return nil, fmt.Errorf("balance: onionbalance cannot run on this system: %w", errors.ErrUnsupported)
	}
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			closers = append(closers, r, w)
		}
		return r, w, err
	}
	keyR, keyW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("balance: %w", err)
	}
	confR, confW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("balance: %w", err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("balance: %w", err)
	}
	// 96 bytes fit in any pipe: write the key now, so that onionbalance
	// reads it whole, then end it.
	if _, err := keyW.Write(keyFile); err != nil {
		closeAll()
		return nil, fmt.Errorf("balance: key pipe: %w", err)
	}
	keyW.Close()

	cmd := exec.Command(path, args...)
	cmd.Env = environ()
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{keyR, confR} // descriptors 3 and 4
	setSysProcAttr(cmd)
	if err := startCmd(cmd); err != nil {
		closeAll()
		return nil, fmt.Errorf("balance: start %s: %w", path, err)
	}
	// The child has its copies; ours of its ends must go, so that its
	// output ends when it exits.
	keyR.Close()
	confR.Close()
	outW.Close()

	r := &run{cmd: cmd, exited: make(chan struct{})}
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		// The configuration can exceed a pipe's buffer: write it while
		// onionbalance reads it (an error means it exited first).
		confW.Write(config)
		confW.Close()
	}()
	go func() {
		defer r.wg.Done()
		r.readOutput(outR, logger)
	}()
	go func() {
		defer r.wg.Done()
		r.err = cmd.Wait()
		close(r.exited)
	}()
	return r, nil
}

// readOutput logs onionbalance's output lines until it ends.
func (r *run) readOutput(out *os.File, logger *slog.Logger) {
	defer out.Close()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	ctx := context.Background()
	pid := r.cmd.Process.Pid
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		r.mu.Lock()
		r.lines = append(r.lines, line)
		if len(r.lines) > keepLines {
			r.lines = r.lines[len(r.lines)-keepLines:]
		}
		r.mu.Unlock()
		lvl, msg := slog.LevelWarn, line // tracebacks and the like
		if m := logLine.FindStringSubmatch(line); m != nil {
			if l, ok := levels[m[1]]; ok {
				lvl = l
			}
			msg = m[2]
		}
		logger.Log(ctx, lvl, "onionbalance: "+msg, "pid", pid)
	}
	// A line over 1 MiB: keep draining so that onionbalance never blocks.
	io.Copy(io.Discard, out)
}

// lastLines returns the last output lines.
func (r *run) lastLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// expected reports whether the exit was asked for.
func (r *run) expected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// stop ends onionbalance (SIGTERM, then SIGKILL to its process group
// after stopGrace) and waits until it is reaped and its output read.
func (r *run) stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopping = true
		r.mu.Unlock()
		select {
		case <-r.exited:
		default:
			terminate(r.cmd.Process)
			t := time.NewTimer(stopGrace)
			select {
			case <-r.exited:
			case <-t.C:
				kill(r.cmd.Process)
				<-r.exited
			}
			t.Stop()
		}
	})
	<-r.exited
	r.wg.Wait()
}
