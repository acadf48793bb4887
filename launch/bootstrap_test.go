//go:build unix

package launch

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/process"
)

var capture = flag.Bool("capture", false, "record testdata/launch/bootstrap_stall_real.txt from a real tor")

// TestCaptureBootstrapStall records, with -capture, the control session of
// EnableNetwork on a real tor whose only bridge is a closed loopback port.
func TestCaptureBootstrapStall(t *testing.T) {
	if !*capture {
		t.Skip("run with -capture to record the transcript from a real tor")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	torrc, _, err := mergeTorrc(Options{Torrc: deadEndBridge(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := process.Start(ctx, process.Options{Torrc: torrc})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A second connection, recorded from after its authentication.
	network, addr := p.ControlAddr()
	raw, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	conn := control.NewConn(controltest.Record(raw, &rec))
	if err := conn.Authenticate(ctx, control.WithCookieFile(p.CookieFile())); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	tor := &Tor{
		conn:      conn,
		proc:      p,
		logger:    slog.New(slog.DiscardHandler),
		bootstrap: newBootstrapConfig(2500*time.Millisecond, -1, nil, nil),
		netMu:     new(sync.Mutex),
	}
	err = tor.EnableNetwork(ctx)
	t.Log(err)
	// A closing command, so the SETEVENTS of the subscription's end is
	// recorded before the connection closes.
	tor.conn.GetInfoValue(ctx, "version")
	tor.conn.Close()
	// Make the session independent of this run's port.
	text := regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(rec.String(), "127.0.0.1:9")
	header := "# EnableNetwork on tor 0.4.9.11 whose only bridge is a closed loopback port,\n" +
		"# recorded with go test ./launch -run TestCaptureBootstrapStall -capture\n"
	if err := os.WriteFile("../testdata/launch/bootstrap_stall_real.txt", []byte(header+text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replayTor returns a Tor whose control connection plays the transcript.
func replayTor(t *testing.T, name string, timeout, stall time.Duration, progress, warning func(*control.Bootstrap)) *Tor {
	t.Helper()
	srv, _ := controltest.NewTranscriptServer(t, "../testdata/launch/"+name)
	conn, err := control.Dial(context.Background(), srv.Network, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Tor{
		conn:      conn,
		logger:    slog.New(slog.DiscardHandler),
		bootstrap: newBootstrapConfig(timeout, stall, progress, warning),
		netMu:     new(sync.Mutex),
	}
}

type recorder struct {
	mu       sync.Mutex
	progress []string
	warnings []string
}

func (r *recorder) onProgress(b *control.Bootstrap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, fmt.Sprintf("%d %s", b.Progress, b.Tag))
}

func (r *recorder) onWarning(b *control.Bootstrap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, fmt.Sprintf("%d %s %s", b.Progress, b.Reason, b.Recommendation))
}

func TestBootstrapTranscripts(t *testing.T) {
	for _, tc := range []struct {
		file         string
		enable       bool
		timeout      time.Duration
		stall        time.Duration // -1 when zero
		wantProgress string
		wantWarnings string
		wantErr      func(error) bool
	}{
		{
			file: "bootstrap_done.txt", enable: true,
			wantProgress: "0 starting,5 conn,10 conn_done,14 handshake,15 handshake_done,20 onehop_create,25 requesting_status,30 loading_status,40 loading_keys,45 requesting_descriptors,50 loading_descriptors,75 enough_dirinfo,90 ap_handshake_done,95 circuit_create,100 done",
		},
		{
			file: "bootstrap_race.txt", enable: true,
			wantProgress: "0 starting,75 enough_dirinfo,100 done",
		},
		{
			file: "bootstrap_already.txt", enable: true,
			wantProgress: "100 done",
		},
		{
			file: "bootstrap_wait.txt", enable: false,
			wantProgress: "50 loading_descriptors,100 done",
		},
		{
			file: "bootstrap_stall_real.txt", enable: true, timeout: 300 * time.Millisecond,
			wantProgress: "0 starting,5 conn",
			wantWarnings: "5 CONNECTREFUSED warn,5 CONNECTREFUSED warn,5 CONNECTREFUSED warn",
			wantErr: func(err error) bool {
				var be *BootstrapError
				return errors.As(err, &be) && errors.Is(err, ErrBootstrapTimeout) &&
					be.Last.Progress == 5 && be.Problem != nil && be.Problem.Count == 3 &&
					strings.Contains(err.Error(), "stopped at 5% (conn: Connecting to a relay)") &&
					strings.Contains(err.Error(), "last problem: Connection refused (CONNECTREFUSED, count 3, recommendation warn, host 127.0.0.1:9)")
			},
		},
		{
			// The same tor, stopped by the stall detector: problems
			// (count 1, 2, 3) are not progress.
			file: "bootstrap_stall_real.txt", enable: true, stall: 300 * time.Millisecond,
			wantProgress: "0 starting,5 conn",
			wantWarnings: "5 CONNECTREFUSED warn,5 CONNECTREFUSED warn,5 CONNECTREFUSED warn",
			wantErr: func(err error) bool {
				var be *BootstrapError
				return errors.As(err, &be) && errors.Is(err, ErrBootstrapStalled) &&
					errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrBootstrapTimeout) &&
					be.Last.Progress == 5 && be.Problem != nil && be.Problem.Count == 3 &&
					strings.Contains(err.Error(), "stopped at 5% (conn: Connecting to a relay): no bootstrap progress")
			},
		},
		{
			file: "bootstrap_closed.txt", enable: true,
			wantProgress: "0 starting,5 conn,10 conn_done",
			wantErr: func(err error) bool {
				var be *BootstrapError
				return errors.As(err, &be) && errors.Is(err, net.ErrClosed) && be.Last.Progress == 10
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var r recorder
			stall := tc.stall
			if stall == 0 {
				stall = -1
			}
			tor := replayTor(t, tc.file, tc.timeout, stall, r.onProgress, r.onWarning)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			if tc.enable {
				err = tor.EnableNetwork(ctx)
			} else {
				err = tor.WaitBootstrap(ctx)
			}
			t.Log(err)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("wrong error: %v", err)
			}
			if !errors.Is(err, net.ErrClosed) {
				if _, err := tor.conn.GetInfoValue(ctx, "version"); err != nil {
					t.Errorf("closing GETINFO: %v", err)
				}
			}
			if got := strings.Join(r.progress, ","); got != tc.wantProgress {
				t.Errorf("progress:\n got %s\nwant %s", got, tc.wantProgress)
			}
			if got := strings.Join(r.warnings, ","); got != tc.wantWarnings {
				t.Errorf("warnings:\n got %s\nwant %s", got, tc.wantWarnings)
			}
		})
	}
}
