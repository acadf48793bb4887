//go:build unix

package tor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tor "github.com/gotorcon/tor"
	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/internal/leakcheck"
)

// programEnv makes the test binary the Go program of TestKillGoProgram:
// "ephemeral", or "kept:" followed by the data directory.
const programEnv = "GOTORCON_TOR_TEST_PROGRAM"

// TestKillGoProgram SIGKILLs the Go program that launched tor (a copy of
// this test binary, see runProgram). Tor owns its control connection
// (__OwningControllerFD), so it exits as soon as the program is gone; the
// next run of the program then sweeps the dead run's throw-away directory
// (Ephemeral), or takes over the lock of the kept data directory and
// reuses it (Kept).
func TestKillGoProgram(t *testing.T) {
	if mode := os.Getenv(programEnv); mode != "" {
		runProgram(t, mode)
		return
	}
	t.Run("Ephemeral", func(t *testing.T) {
		tmp := t.TempDir() // the programs' TMPDIR
		first := startProgram(t, tmp, "ephemeral")
		first.kill(t)
		for _, d := range []string{first.tempDir, first.socketDir} {
			_, err := os.Stat(d)
			require.NoError(t, err, "the killed program could not remove %s", d)
		}

		next := startProgram(t, tmp, "ephemeral")
		t.Logf("next start took %v", next.startup)
		for _, d := range []string{first.tempDir, first.socketDir} {
			_, err := os.Stat(d)
			assert.ErrorIs(t, err, os.ErrNotExist, "the next start swept the dead run's %s", d)
		}
		next.close(t)
		for _, d := range []string{next.tempDir, next.socketDir} {
			_, err := os.Stat(d)
			assert.ErrorIs(t, err, os.ErrNotExist, "Close removed %s", d)
		}
	})

	t.Run("Kept", func(t *testing.T) {
		tmp := t.TempDir()
		dataDir := filepath.Join(t.TempDir(), "state")
		first := startProgram(t, tmp, "kept:"+dataDir)
		require.Equal(t, dataDir, first.dataDir)
		assert.Equal(t, strconv.Itoa(first.cmd.Process.Pid), readLockOwner(t, dataDir), "the first program holds the data directory's lock")
		first.kill(t)

		next := startProgram(t, tmp, "kept:"+dataDir)
		t.Logf("next start took %v", next.startup)
		require.Equal(t, dataDir, next.dataDir, "the next start reuses the data directory")
		assert.Equal(t, strconv.Itoa(next.cmd.Process.Pid), readLockOwner(t, dataDir), "the next program took the lock over")
		_, err := os.Stat(first.tempDir)
		assert.ErrorIs(t, err, os.ErrNotExist, "the next start swept the dead run's %s", first.tempDir)
		next.close(t)
		_, err = os.Stat(filepath.Join(dataDir, "state"))
		assert.NoError(t, err, "tor's state is kept in %s", dataDir)
	})
}

// runProgram is the Go program of TestKillGoProgram: it starts tor (its
// network off), prints a "TOR" line saying where it is, and closes it when
// its standard input ends, unless it is killed first.
func runProgram(t *testing.T, mode string) {
	opts := &tor.Options{NoNetwork: true, Torrc: new(config.Torrc).
		Add("GeoIPFile", os.DevNull).Add("GeoIPv6File", os.DevNull)}
	if dir, ok := strings.CutPrefix(mode, "kept:"); ok {
		opts.DataDir = dir
	} else {
		opts.Ephemeral = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := tor.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := tr.Launched().Process()
	_, sock := p.ControlAddr()
	fmt.Printf("TOR %d %q %q %q\n", p.Pid(), p.DataDir(), filepath.Dir(p.TorrcPath()), filepath.Dir(sock))
	io.Copy(io.Discard, os.Stdin)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

// program is a run of runProgram, as its TOR line describes it.
type program struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	done      chan struct{} // closed when it has exited
	waitErr   error         // how, set before done is closed
	startup   time.Duration // from exec to the TOR line
	torPid    int
	dataDir   string
	tempDir   string // holds the torrc
	socketDir string // holds the control socket (may be tempDir)
}

// startProgram runs the test binary as the program of mode with TMPDIR
// tmp, and waits for its TOR line.
func startProgram(t *testing.T, tmp, mode string) *program {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillGoProgram$", "-test.count=1")
	cmd.Env = append(os.Environ(), programEnv+"="+mode, "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out := &torLineWriter{line: make(chan string, 1)}
	cmd.Stdout = out
	start := time.Now()
	require.NoError(t, cmd.Start())
	p := &program{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if leakcheck.PidAlive(p.torPid) {
			syscall.Kill(p.torPid, syscall.SIGKILL)
		}
	})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	select {
	case l := <-out.line:
		p.startup = time.Since(start)
		_, err := fmt.Sscanf(l, "TOR %d %q %q %q", &p.torPid, &p.dataDir, &p.tempDir, &p.socketDir)
		require.NoError(t, err, "TOR line %q", l)
		require.True(t, leakcheck.PidAlive(p.torPid), "tor %d runs", p.torPid)
		return p
	case <-p.done:
		t.Fatalf("the program exited without a TOR line: %v; it said %q", p.waitErr, out.other)
	case <-time.After(hangBound):
		t.Fatalf("no TOR line from the program within %v", hangBound)
	}
	return nil
}

// torLineWriter is the program's standard output: it passes its first
// line starting with "TOR " to line, keeps the lines before it in other
// (to read once the program has exited), and drops the rest.
type torLineWriter struct {
	line  chan string
	other []string
	buf   []byte
	sent  bool
}

func (w *torLineWriter) Write(b []byte) (int, error) {
	if w.sent {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		l := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.HasPrefix(l, "TOR ") {
			w.sent = true
			w.line <- l
			w.buf = nil
			return len(b), nil
		}
		w.other = append(w.other, l)
	}
}

// kill SIGKILLs the program and waits for its tor to exit, logging how
// long that took.
func (p *program) kill(t *testing.T) {
	t.Helper()
	killedAt := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	var ee *exec.ExitError
	require.True(t, errors.As(p.waitErr, &ee), "the program was killed: %v", p.waitErr)
	leakcheck.WaitPidGone(t, p.torPid, hangBound)
	t.Logf("tor (pid %d) exited %v after its Go program was SIGKILLed", p.torPid, time.Since(killedAt))
}

// close ends the program's standard input; it closes tor and exits.
func (p *program) close(t *testing.T) {
	t.Helper()
	require.NoError(t, p.stdin.Close())
	select {
	case <-p.done:
		require.NoError(t, p.waitErr, "the program closed tor and exited")
	case <-time.After(hangBound):
		t.Fatal("the program did not exit after its input ended")
	}
	leakcheck.WaitPidGone(t, p.torPid, hangBound)
}

// readLockOwner returns the pid written in the data directory's lock file.
func readLockOwner(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "gotorcon.lock"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}
