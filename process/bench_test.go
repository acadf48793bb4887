//go:build unix

package process

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/config"
)

// BenchmarkStart measures Start (tor answering on its pre-authenticated
// owning connection) plus one GETINFO; Close is outside the timer but its
// time is reported as close-ms. "geoip" is the default (tor reads its own
// GeoIP databases), "nogeoip" sets them to /dev/null as tortest does: the
// ratio is what country rules cost at start.
func BenchmarkStart(b *testing.B) {
	needTor(b)
	for _, bc := range []struct {
		name  string
		torrc func() *config.Torrc
	}{
		{"geoip", offline},
		{"nogeoip", func() *config.Torrc {
			return offline().Add("GeoIPFile", os.DevNull).Add("GeoIPv6File", os.DevNull)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			var closeTotal time.Duration
			for b.Loop() {
				p, err := Start(ctx, Options{Torrc: bc.torrc()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Control().GetInfoValue(ctx, "version"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				t := time.Now()
				if err := p.Close(); err != nil {
					b.Fatal(err)
				}
				closeTotal += time.Since(t)
				b.StartTimer()
			}
			b.ReportMetric(float64(closeTotal.Milliseconds())/float64(b.N), "close-ms")
		})
	}
}

// BenchmarkRawTor is the floor for BenchmarkStart: the same tor started by
// hand with a socket pair, timed until it answers GETINFO version.
func BenchmarkRawTor(b *testing.B) {
	path := needTor(b)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		os.Chmod(dir, 0o700)
		os.Mkdir(filepath.Join(dir, "data"), 0o700)
		torrc := offline().
			Add("DataDirectory", filepath.Join(dir, "data")).
			Add("ControlSocket", filepath.Join(dir, "control")).
			Add("CookieAuthentication", "1").
			Add("GeoIPFile", "/dev/null").Add("GeoIPv6File", "/dev/null")
		torrc.WriteFile(filepath.Join(dir, "torrc"))
		os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
		ours, theirs, err := socketPair()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(path, "-f", filepath.Join(dir, "torrc"), "--defaults-torrc", filepath.Join(dir, "empty"),
			"--ignore-missing-torrc", "__OwningControllerFD", "3")
		cmd.ExtraFiles = []*os.File{theirs}
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		theirs.Close()
		ours.Write([]byte("GETINFO version\r\n"))
		line, err := bufio.NewReader(ours).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "250") {
			b.Fatalf("%q %v", line, err)
		}
		b.StopTimer()
		ours.Close()
		cmd.Wait()
		b.StartTimer()
	}
}
