package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// Default timeouts.
const (
	// defaultStartTimeout bounds Start when Options.StartTimeout is zero.
	// tor answers in tens of milliseconds on an idle machine; several tors
	// starting at once on a small machine take seconds.
	defaultStartTimeout = time.Minute
	// defaultGracePeriod is how long Close waits for tor to exit cleanly
	// after SIGTERM before it kills it (tor needs about 2 s).
	defaultGracePeriod = 5 * time.Second
	// ownerExitWait is how long Close waits after closing the owning
	// connection (tor exits ~30 ms later) before it sends SIGTERM.
	ownerExitWait = time.Second
	// killWait bounds the wait for tor to die after SIGKILL.
	killWait = 10 * time.Second
)

// ErrExited matches (errors.Is) the error of a tor that exited on its own:
// see [ExitError].
var ErrExited = errors.New("tor exited")

// ErrDataDirInUse matches the error of a Start whose data directory is in
// use by another tor of ours (this program's or another's).
var ErrDataDirInUse = errors.New("data directory in use")

// ErrStartTimeout matches the error of a Start that ran out of time before
// tor answered on its control connection.
var ErrStartTimeout = errors.New("tor did not answer in time")

// ExitError reports that tor exited on its own, with its last warn/err log
// lines (or its last lines when it logged no warning). It matches
// [ErrExited] and unwraps to the error of the wait (an *exec.ExitError for a
// non-zero status; nil for status 0).
type ExitError struct {
	Err   error
	Lines []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("tor exited")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString(" with status 0")
	}
	b.WriteString(formatLines(e.Lines))
	return b.String()
}

// Unwrap returns the wait error.
func (e *ExitError) Unwrap() error { return e.Err }

// Is reports whether target is ErrExited.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

func formatLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strconv.Quote(truncate(lineMessage(l), 200))
	}
	return "; tor said: " + strings.Join(q, ", ")
}

// Options configure [Start]. The zero value runs the tor found by [Find]
// with a temporary data directory.
type Options struct {
	// Path is the tor binary. When empty, Find looks at $GOTORCON_TOR,
	// then PATH, then the usual install locations. Ignored with a Creator.
	Path string
	// Torrc holds the caller's options. Start adds its own defaults only for
	// keys the caller did not set: DataDirectory, ControlSocket (or
	// ControlPort auto where unix sockets are missing), ControlPortWriteToFile,
	// CookieAuthentication 1, SocksPort "auto ExtendedErrors
	// IsolateSOCKSAuth", __ReloadTorrcOnSIGHUP 0, Log "notice stdout" and
	// __OwningControllerProcess (this program's pid). GeoIPFile and
	// GeoIPv6File are left to tor, which reads its own databases when they
	// are installed (Debian: tor-geoipdb), so that country rules such as
	// ExcludeNodes {ru} work. Parsing them costs about 0.4 s of CPU at
	// start (BenchmarkStart: 443 ms against 43 ms); set both to os.DevNull
	// to skip it. Start does not modify Torrc.
	Torrc *config.Torrc
	// DataDir is tor's DataDirectory, created with mode 0700 when missing and
	// kept by Close. Start locks it (a gotorcon.lock file in it) for as long
	// as tor runs: a second Start on the same directory fails with an error
	// matching [ErrDataDirInUse]. When empty (and Torrc sets no DataDirectory), tor gets
	// a temporary one that Close removes.
	DataDir string
	// TempDir is the parent of the private directory (os.TempDir when
	// empty).
	TempDir string
	// Output, when set, receives a copy of tor's stdout and stderr.
	Output io.Writer
	// Logger, when set, receives tor's log lines (at the matching level)
	// and this package's own debug messages.
	Logger *slog.Logger
	// Creator runs tor; nil runs the binary (see [ExecCreator]).
	Creator Creator
	// StartTimeout bounds Start (a minute when zero); the
	// context's deadline applies too.
	StartTimeout time.Duration
	// GracePeriod is how long Close lets tor exit after SIGTERM before
	// SIGKILL (5 s when zero).
	GracePeriod time.Duration
}

// Process is a running tor started by [Start]. Its methods are safe for
// concurrent use.
type Process struct {
	runner     Runner
	logger     *slog.Logger
	out        *output
	grace      time.Duration
	dirs       []*privateDir
	dataLock   *os.File // the lock of a kept DataDir
	dataDir    string
	cookieFile string
	torrcPath  string
	portFile   string
	pid        int
	version    Version

	ctl        *control.Conn
	ctlNetwork string
	ctlAddr    string

	done    chan struct{}
	exitErr error // set before done is closed

	mu      sync.Mutex
	closing bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts tor and returns once it answers on its owning control
// connection. On any failure tor is killed and reaped and the temporary
// directories are removed; the error carries tor's last warn/err lines.
// Errors match [ErrExited] (tor exited), [ErrStartTimeout] (no answer in
// StartTimeout), the context's error, [ErrNotFound], [ErrTooOld],
// [ErrBadVersion] or config.ErrConflict.
func Start(ctx context.Context, opts Options) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("process: start tor: %w", err)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("%w: no answer within %v (Options.StartTimeout)", ErrStartTimeout, timeout))
	defer cancel()

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	creator := opts.Creator
	if creator == nil {
		path, err := Find(opts.Path)
		if err != nil {
			return nil, err
		}
		if _, err := ReadVersion(ctx, path); err != nil {
			return nil, err
		}
		creator = ExecCreator(func(_ context.Context, args []string) (*exec.Cmd, error) {
			return exec.Command(path, args...), nil
		})
	}
	sweepStaleOnce(logger, staleParents(opts.TempDir)...)

	p := &Process{
		logger: logger,
		out:    newOutput(0, opts.Output, opts.Logger),
		grace:  opts.GracePeriod,
		done:   make(chan struct{}),
	}
	if p.grace <= 0 {
		p.grace = defaultGracePeriod
	}
	dir, err := newPrivateDir(opts.TempDir)
	if err != nil {
		return nil, err
	}
	p.dirs = append(p.dirs, dir)
	torrc, err := p.buildTorrc(opts, dir.path)
	if err != nil {
		p.removeDirs()
		return nil, err
	}
	p.torrcPath = filepath.Join(dir.path, "torrc")
	empty := filepath.Join(dir.path, "empty")
	// Written as ours, so that config.TorConfig.Save may persist into it.
	if err := config.WriteOwnedTorrc(p.torrcPath, torrc); err != nil {
		p.removeDirs()
		return nil, fmt.Errorf("process: write torrc: %w", err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		p.removeDirs()
		return nil, fmt.Errorf("process: %w", err)
	}
	args := []string{"-f", p.torrcPath, "--defaults-torrc", empty, "--ignore-missing-torrc"}
	runner, err := creator.Create(ctx, &Cmd{Args: args, Output: p.out})
	if err != nil {
		p.removeDirs()
		return nil, fmt.Errorf("process: create tor: %w", err)
	}
	p.runner = runner
	ctl, err := runner.Control()
	if err != nil && !errors.Is(err, ErrNoControl) {
		p.removeDirs()
		return nil, fmt.Errorf("process: owning control connection: %w", err)
	}
	if err := runner.Start(); err != nil {
		if ctl != nil {
			ctl.Close()
		}
		p.removeDirs()
		return nil, fmt.Errorf("process: start tor: %w", err)
	}
	p.pid = runner.Pid()
	go p.waitLoop()
	logger.Debug("tor started", "pid", p.pid, "dir", dir.path)

	if err := p.connect(ctx, ctl); err != nil {
		return nil, p.abort(err)
	}
	logger.Debug("tor answers", "pid", p.pid, "version", p.version, "control", p.ctlAddr)
	return p, nil
}

// buildTorrc merges our defaults into a copy of the caller's options.
func (p *Process) buildTorrc(opts Options, dir string) (*config.Torrc, error) {
	t := opts.Torrc.Clone()
	if td, ok := t.Get("DataDirectory"); ok {
		if opts.DataDir != "" && filepath.Clean(td) != filepath.Clean(opts.DataDir) {
			return nil, fmt.Errorf("process: %w: Options.DataDir %q and torrc DataDirectory %q", config.ErrConflict, opts.DataDir, td)
		}
		p.dataDir = td
	} else {
		p.dataDir = opts.DataDir
		if p.dataDir == "" {
			p.dataDir = filepath.Join(dir, "data")
		}
		if abs, err := filepath.Abs(p.dataDir); err == nil {
			p.dataDir = abs
		}
		t.Set("DataDirectory", p.dataDir)
	}
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("process: data directory: %w", err)
	}
	if !strings.HasPrefix(p.dataDir, dir+string(filepath.Separator)) {
		if err := p.lockDataDir(); err != nil {
			return nil, err
		}
	}
	if !t.Has("ControlPort") && !t.Has("ControlSocket") {
		if haveUnixSockets {
			sock := filepath.Join(dir, "control")
			if len(sock) > maxSunPath || strings.ContainsAny(sock, " \t\"\\") {
				short, err := newPrivateDir("/tmp")
				if err != nil {
					return nil, err
				}
				p.dirs = append(p.dirs, short)
				sock = filepath.Join(short.path, "control")
			}
			t.Set("ControlSocket", sock)
		} else {
			t.Set("ControlPort", "auto")
		}
	}
	if pf, ok := t.Get("ControlPortWriteToFile"); ok {
		p.portFile = pf
	} else {
		p.portFile = filepath.Join(dir, "control-port")
		t.Set("ControlPortWriteToFile", p.portFile)
	}
	defaults := [][2]string{
		{"CookieAuthentication", "1"},
		{"SocksPort", "auto ExtendedErrors IsolateSOCKSAuth"},
		{"__ReloadTorrcOnSIGHUP", "0"},
		{"Log", "notice stdout"},
		{"__OwningControllerProcess", strconv.Itoa(os.Getpid())},
	}
	for _, d := range defaults {
		if !t.Has(d[0]) {
			t.Set(d[0], d[1])
		}
	}
	if cf, ok := t.Get("CookieAuthFile"); ok {
		p.cookieFile = cf
	} else {
		p.cookieFile = filepath.Join(p.dataDir, "control_auth_cookie")
	}
	return t, t.Validate()
}

// lockDataDir locks a data directory that outlives us, so that two tors
// never share it (tor refuses that too, but only after it has started, and
// with a message in its log).
func (p *Process) lockDataDir() error {
	path := filepath.Join(p.dataDir, lockName)
	f, err := lockShared(path)
	if errors.Is(err, errLocked) {
		owner := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				owner = " (by pid " + pid + ")"
			}
		}
		return fmt.Errorf("process: %w: %s is locked%s; give each tor its own data directory", ErrDataDirInUse, p.dataDir, owner)
	}
	if err != nil {
		return fmt.Errorf("process: lock data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	p.dataLock = f
	return nil
}

// connect waits until tor answers on its owning connection (or, without
// one, connects, authenticates and takes ownership), then reads tor's
// version and control listeners.
func (p *Process) connect(ctx context.Context, raw net.Conn) error {
	// Stop waiting as soon as tor exits.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.done:
			cancel(ErrExited)
		case <-ctx.Done():
		}
	}()
	var opts []control.Option
	if p.logger != nil {
		opts = append(opts, control.WithLogger(p.logger))
	}
	var c *control.Conn
	if raw != nil {
		c = control.NewConn(raw, opts...)
	} else {
		var err error
		if c, err = p.takeOwnership(ctx, opts); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		c.Close()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	info, err := c.GetInfo(ctx, "version", "net/listeners/control")
	if err != nil {
		return fail(err)
	}
	if p.version, err = ParseVersion(info[0]); err != nil {
		return fail(err)
	}
	if err := checkVersion(p.version); err != nil {
		return fail(err)
	}
	listeners, err := control.SplitQuoted(info[1])
	if err != nil {
		return fail(fmt.Errorf("%w: net/listeners/control: %w", control.ErrProtocol, err))
	}
	for _, l := range listeners {
		n, a := parseListener(l)
		if p.ctlNetwork == "" || (n == "unix" && p.ctlNetwork != "unix") {
			p.ctlNetwork, p.ctlAddr = n, a
		}
	}
	p.ctl = c
	return nil
}

// parseListener turns "unix:/path" or "127.0.0.1:9051" into a dial target.
func parseListener(l string) (network, address string) {
	if p, ok := strings.CutPrefix(l, "unix:"); ok {
		return "unix", p
	}
	return "tcp", l
}

// takeOwnership connects to the control port written to
// ControlPortWriteToFile, authenticates with the cookie and sends
// TAKEOWNERSHIP, for runners that cannot pass an owning descriptor.
func (p *Process) takeOwnership(ctx context.Context, opts []control.Option) (*control.Conn, error) {
	var (
		conn    net.Conn
		lastErr error
		delay   = 5 * time.Millisecond
	)
	for conn == nil {
		if content, err := os.ReadFile(p.portFile); err == nil {
			for _, line := range strings.Split(string(content), "\n") {
				network, addr := "", ""
				if a, ok := strings.CutPrefix(line, "PORT="); ok {
					network, addr = "tcp", strings.TrimSpace(a)
				} else if a, ok := strings.CutPrefix(line, "UNIX_PORT="); ok {
					network, addr = "unix", strings.TrimSpace(a)
				} else {
					continue
				}
				var d net.Dialer
				if conn, lastErr = d.DialContext(ctx, network, addr); conn == nil {
					continue
				}
				break
			}
		} else {
			lastErr = err
		}
		if conn != nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waiting for %s: %v)", context.Cause(ctx), p.portFile, lastErr)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
	c := control.NewConn(conn, opts...)
	if err := c.Authenticate(ctx, control.WithCookieFile(p.cookieFile)); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.TakeOwnership(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TAKEOWNERSHIP: %w", err)
	}
	return c, nil
}

// waitLoop reaps tor and records why it exited.
func (p *Process) waitLoop() {
	err := p.runner.Wait()
	p.out.flush()
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if !closing {
		p.exitErr = &ExitError{Err: err, Lines: p.out.problemLines()}
	}
	p.logger.Debug("tor exited", "pid", p.pid, "err", err, "closed", closing)
	close(p.done)
}

// abort ends a failed Start: it kills tor, reaps it, removes our
// directories and returns the error to report.
func (p *Process) abort(cause error) error {
	// An exit explains a closed connection better than "EOF": give a
	// dying tor a moment to be reaped.
	if !errors.Is(cause, ErrExited) && !errors.Is(cause, ErrStartTimeout) && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		select {
		case <-p.done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	select {
	case <-p.done:
		if p.exitErr != nil {
			cause = p.exitErr
		}
	default:
	}
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	select {
	case <-p.done:
	default:
		p.runner.Kill()
		select {
		case <-p.done:
		case <-time.After(killWait):
			p.logger.Warn("tor did not die after SIGKILL", "pid", p.pid)
		}
	}
	p.removeDirs()
	var ee *ExitError
	if errors.As(cause, &ee) {
		return fmt.Errorf("process: start tor: %w", cause)
	}
	return fmt.Errorf("process: start tor: %w%s", cause, formatLines(p.out.problemLines()))
}

func (p *Process) removeDirs() error {
	var errs []error
	for i := len(p.dirs) - 1; i >= 0; i-- {
		if err := p.dirs[i].remove(); err != nil {
			errs = append(errs, err)
		}
	}
	p.dirs = nil
	if p.dataLock != nil {
		p.dataLock.Close()
		p.dataLock = nil
	}
	return errors.Join(errs...)
}

// Control returns the owning, authenticated control connection. Tor exits
// when it is closed; Close closes it.
func (p *Process) Control() *control.Conn { return p.ctl }

// ControlAddr returns where tor listens for further control connections
// (cookie authentication): ("unix", path) or ("tcp", "127.0.0.1:port"), or
// empty strings when tor has no control listener.
func (p *Process) ControlAddr() (network, address string) { return p.ctlNetwork, p.ctlAddr }

// CookieFile returns the path of tor's control authentication cookie.
func (p *Process) CookieFile() string { return p.cookieFile }

// DataDir returns tor's DataDirectory.
func (p *Process) DataDir() string { return p.dataDir }

// TorrcPath returns the path of the torrc Start wrote (it is removed by
// Close).
func (p *Process) TorrcPath() string { return p.torrcPath }

// Pid returns tor's process id (0 when tor runs inside this program).
func (p *Process) Pid() int { return p.pid }

// Version returns the version tor reported.
func (p *Process) Version() Version { return p.version }

// Done returns a channel that is closed when tor has exited and has been
// reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns nil while tor runs or when it exited because of Close, and an
// *[ExitError] (matching [ErrExited]) when it exited otherwise: on its own,
// killed by someone else, or because the caller closed [Process.Control]
// (a clean exit: ExitError.Err is nil).
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.exitErr
	default:
		return nil
	}
}

// Close stops tor and removes the temporary directories: it closes the
// owning connection (tor exits within milliseconds), sends SIGTERM if tor is
// still running a second later, SIGKILL after the grace period, reaps tor
// and removes the directories. A DataDir given in Options is kept. Close is
// idempotent and safe to call from many goroutines; every call returns
// after tor is gone. It returns an error only when tor could not be stopped
// or the directories could not be removed; how tor exited is [Process.Err].
func (p *Process) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.shutdown() })
	return p.closeErr
}

func (p *Process) shutdown() error {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	if p.ctl != nil {
		p.ctl.Close()
	}
	exited := p.waitDone(ownerExitWait)
	if !exited {
		p.logger.Debug("tor still runs after its owning connection closed: SIGTERM", "pid", p.pid)
		if err := p.runner.Terminate(); err == nil {
			exited = p.waitDone(p.grace)
		}
	}
	if !exited {
		p.logger.Warn("tor did not exit cleanly: SIGKILL", "pid", p.pid)
		p.runner.Kill()
		exited = p.waitDone(killWait)
	}
	if !exited {
		return fmt.Errorf("process: tor (pid %d) did not exit; kept its directory %s", p.pid, p.dirs[0].path)
	}
	if err := p.removeDirs(); err != nil {
		return fmt.Errorf("process: remove temporary directory: %w", err)
	}
	return nil
}

func (p *Process) waitDone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Warnings returns tor's most recent [warn] and [err] output lines (or,
// when it printed none, its last few lines), oldest first; the warning
// about running as root is left out.
func (p *Process) Warnings() []string { return p.out.problemLines() }

// truncate shortens s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
