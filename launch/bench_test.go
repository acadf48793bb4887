//go:build unix

package launch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	biner "github.com/cretz/bine/tor"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/process"
)

// BenchmarkPrivate measures Private (network off) until an authenticated
// control connection has answered GETINFO version. Close is outside the
// timer (reported as close-ms).
func BenchmarkPrivate(b *testing.B) {
	ctx := context.Background()
	var closing time.Duration
	for b.Loop() {
		tor, err := Private(ctx, Options{NoNetwork: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tor.Control().GetInfoValue(ctx, "version"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		t := time.Now()
		tor.Close()
		closing += time.Since(t)
		b.StartTimer()
	}
	b.ReportMetric(float64(closing.Microseconds())/1000/float64(b.N), "close-ms")
}

// BenchmarkTorControlPort is the floor: the same tor started by hand,
// timed until its control port file appears (tor has opened its control
// listener) and, separately, until it answers on a cookie-authenticated
// connection.
func BenchmarkTorControlPort(b *testing.B) {
	path, err := process.Find("")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var listening time.Duration
	for b.Loop() {
		b.StopTimer()
		dir, _ := os.MkdirTemp("", "bench")
		os.Chmod(dir, 0o700)
		data := filepath.Join(dir, "data")
		os.Mkdir(data, 0o700)
		portFile := filepath.Join(dir, "port")
		torrc := offline().
			Add("DataDirectory", data).
			Add("ControlPort", "auto").
			Add("ControlPortWriteToFile", portFile).
			Add("CookieAuthentication", "1").
			Add("GeoIPFile", "/dev/null").Add("GeoIPv6File", "/dev/null")
		torrc.WriteFile(filepath.Join(dir, "torrc"))
		os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
		cmd := exec.Command(path, "-f", filepath.Join(dir, "torrc"), "--defaults-torrc", filepath.Join(dir, "empty"), "--ignore-missing-torrc")
		b.StartTimer()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var addr string
		for {
			if c, err := os.ReadFile(portFile); err == nil && strings.HasSuffix(string(c), "\n") {
				addr = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(c), "\n", 2)[0], "PORT="))
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		listening += time.Since(start)
		conn, err := control.Connect(ctx, "tcp", addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.GetInfoValue(ctx, "version"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		conn.Close()
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(listening.Microseconds())/1000/float64(b.N), "listening-ms")
}

// BenchmarkBine is cretz/bine v0.2.0's tor.Start with the network off, for
// comparison (it polls the control port file, then authenticates).
func BenchmarkBine(b *testing.B) {
	path, err := process.Find("")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		dir, _ := os.MkdirTemp("", "binebench")
		t, err := biner.Start(ctx, &biner.StartConf{
			ExePath:         path,
			DataDir:         dir,
			NoAutoSocksPort: true,
			ExtraArgs:       []string{"--DisableNetwork", "1", "--GeoIPFile", "/dev/null", "--GeoIPv6File", "/dev/null"},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Control.GetInfo("version"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		t.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
