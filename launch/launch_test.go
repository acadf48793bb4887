//go:build unix

package launch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/process"
)

func TestPrivateOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tor, err := Private(ctx, Options{NoNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := tor.Process().Pid(), privDir(tor)
	v, err := tor.Control().GetInfoValue(ctx, "version")
	if err != nil || v == "" {
		t.Fatalf("GETINFO version = %q, %v", v, err)
	}
	// A further connection authenticates with the cookie.
	network, addr := tor.ControlAddr()
	c2, err := control.Connect(ctx, network, addr, nil)
	if err != nil {
		t.Fatalf("second connection to %s %s: %v", network, addr, err)
	}
	if got, err := c2.GetConf(ctx, "DisableNetwork"); err != nil || got[0].Value != "1" {
		t.Errorf("DisableNetwork = %v, %v", got, err)
	}
	c2.Close()
	if _, err := tor.SocksAddr(ctx); !errors.Is(err, ErrNoSocks) {
		t.Errorf("SocksAddr offline = %v, want ErrNoSocks", err)
	}
	if err := tor.Close(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, pid, dir)
	checkNoGoroutines(t)
	if err := tor.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestTorrcMerge(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		torrc, network *config.Torrc
	}{
		{"caller vs network", new(config.Torrc).Add("SocksPort", "9999"), new(config.Torrc).Add("SocksPort", "auto")},
		{"caller enables the network", new(config.Torrc).Add("DisableNetwork", "0"), nil},
		{"network disables twice", nil, new(config.Torrc).Add("DisableNetwork", "1").Add("DisableNetwork", "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Private(ctx, Options{Torrc: tc.torrc, Network: tc.network})
			if !errors.Is(err, config.ErrConflict) {
				t.Fatalf("Private = %v, want ErrConflict", err)
			}
			t.Log(err)
		})
	}

	// Same values merge; DisableNetwork 1 from the caller keeps tor offline.
	torrc, noNet, err := mergeTorrc(Options{
		Torrc:   new(config.Torrc).Add("DisableNetwork", "1").Add("SocksPort", "auto").Add("Log", "notice stdout"),
		Network: new(config.Torrc).Add("SocksPort", "auto").Add("TestingTorNetwork", "1"),
	})
	if err != nil || !noNet {
		t.Fatalf("merge = %v noNet=%v", err, noNet)
	}
	want := "DisableNetwork 1\nSocksPort auto\nLog \"notice stdout\"\nTestingTorNetwork 1\n"
	if got := torrc.String(); got != want && got != strings.ReplaceAll(want, `"notice stdout"`, "notice stdout") {
		t.Errorf("merged torrc:\n%s\nwant:\n%s", got, want)
	}
}

func TestCallerDisableNetworkKeepsOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tor, err := Private(ctx, Options{Torrc: offline()})
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	b, err := tor.Control().GetInfoValue(ctx, "status/bootstrap-phase")
	if err != nil || !strings.Contains(b, "PROGRESS=0") {
		t.Errorf("bootstrap-phase %q %v", b, err)
	}
}

// Offline bootstrap timeout: the only authority is a closed loopback port.
func TestBootstrapTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress []int
	var pid int
	var dir string
	start := time.Now()
	_, err := Private(ctx, Options{
		Torrc:            deadEndNetwork(t),
		BootstrapTimeout: 2 * time.Second,
		Progress: func(b *control.Bootstrap) {
			progress = append(progress, b.Progress)
		},
		Logger:  nil,
		Creator: recordingCreator(func(p int, d string) { pid, dir = p, d }),
	})
	took := time.Since(start)
	t.Logf("after %v: %v", took, err)
	var be *BootstrapError
	if !errors.As(err, &be) {
		t.Fatalf("Private = %v, want a *BootstrapError", err)
	}
	if !errors.Is(err, ErrBootstrapTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not match ErrBootstrapTimeout and DeadlineExceeded")
	}
	if be.Last == nil || be.Last.Progress != 5 || be.Last.Tag != "conn" {
		t.Errorf("Last = %+v, want 5%% conn", be.Last)
	}
	if be.Problem == nil || be.Problem.Reason != "CONNECTREFUSED" {
		t.Errorf("Problem = %+v, want CONNECTREFUSED", be.Problem)
	}
	if !strings.Contains(err.Error(), "stopped at 5%") {
		t.Errorf("message lacks the progress: %v", err)
	}
	if len(progress) < 2 || progress[0] != 0 || progress[len(progress)-1] != 5 {
		t.Errorf("progress callbacks %v, want 0 … 5", progress)
	}
	if took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	checkGone(t, pid, dir)
}

// Offline bootstrap warning: a closed loopback bridge makes tor recommend a
// warning at once; the callback cancels the launch.
func TestBootstrapWarning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var warnings []*control.Bootstrap
	var pid int
	var dir string
	_, err := Private(wctx, Options{
		Torrc: deadEndBridge(t),
		Warning: func(b *control.Bootstrap) {
			warnings = append(warnings, b)
			wcancel()
		},
		Creator: recordingCreator(func(p int, d string) { pid, dir = p, d }),
	})
	if len(warnings) == 0 {
		t.Fatalf("no warning; err = %v", err)
	}
	w := warnings[0]
	if w.Recommendation != "warn" || w.Reason != "CONNECTREFUSED" || !strings.HasPrefix(w.HostAddr, "127.0.0.1:") {
		t.Errorf("warning %+v", w)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Private = %v, want context.Canceled", err)
	}
	t.Log(err)
	checkGone(t, pid, dir)
}

// Network off at launch, enabled later with the same bootstrap wait.
func TestEnableNetworkLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress []string
	start := time.Now()
	tor, err := Private(ctx, Options{
		Torrc:            deadEndNetwork(t),
		NoNetwork:        true,
		BootstrapTimeout: 1500 * time.Millisecond,
		Progress:         func(b *control.Bootstrap) { progress = append(progress, b.Tag) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("offline launch took %v", time.Since(start))
	defer tor.Close()
	if len(progress) != 0 {
		t.Errorf("progress before EnableNetwork: %v", progress)
	}
	err = tor.EnableNetwork(ctx)
	var be *BootstrapError
	if !errors.As(err, &be) || be.Last == nil || be.Last.Progress != 5 {
		t.Fatalf("EnableNetwork = %v, want a BootstrapError at 5%%", err)
	}
	if strings.Join(progress, ",") != "starting,conn" {
		t.Errorf("progress %v", progress)
	}
	// The tor is still ours to use; its network is now on.
	got, err := tor.Control().GetConf(ctx, "DisableNetwork")
	if err != nil || got[0].Value != "0" {
		t.Errorf("DisableNetwork = %v, %v", got, err)
	}
	if addr, err := tor.SocksAddr(ctx); err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("SocksAddr = %q, %v", addr, err)
	}
}

func TestTorExitsDuringBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tor, err := Private(ctx, Options{Torrc: deadEndNetwork(t), NoNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	time.AfterFunc(300*time.Millisecond, func() { syscall.Kill(tor.Process().Pid(), syscall.SIGKILL) })
	err = tor.EnableNetwork(ctx)
	var be *BootstrapError
	if !errors.As(err, &be) || !errors.Is(err, process.ErrExited) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("EnableNetwork = %v, want a BootstrapError for tor's exit", err)
	}
	t.Log(err)
}

// recordingCreator runs tor like the default and reports its pid and
// private directory.
func recordingCreator(report func(pid int, dir string)) process.Creator {
	path, _ := process.Find("")
	return creatorFunc(func(ctx context.Context, cmd *process.Cmd) (process.Runner, error) {
		r, err := process.ExecCreator(func(_ context.Context, args []string) (*execCmd, error) {
			return newExecCmd(path, args), nil
		}).Create(ctx, cmd)
		if err != nil {
			return nil, err
		}
		return &reportingRunner{Runner: r, report: report, dir: torrcDir(cmd.Args)}, nil
	})
}

type creatorFunc func(ctx context.Context, cmd *process.Cmd) (process.Runner, error)

func (f creatorFunc) Create(ctx context.Context, cmd *process.Cmd) (process.Runner, error) {
	return f(ctx, cmd)
}

type reportingRunner struct {
	process.Runner
	report func(int, string)
	dir    string
	once   sync.Once
}

func (r *reportingRunner) Start() error {
	err := r.Runner.Start()
	r.report(r.Runner.Pid(), r.dir)
	return err
}
