package config_test

// The scenario below runs against a real tor and against its transcript
// in testdata/config, played by the fake control server. Running it with
// -capture records the transcript anew:
//
//	go test ./config -run TestScenario/real -capture

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/syncbuf"
	"github.com/gotorcon/tor/internal/testtor"
)

var capture = flag.Bool("capture", false, "record the transcripts in testdata/config from a real tor")

const (
	transcriptFile = "../testdata/config/scenario.txt"
	sanitizedDir   = "/tmp/testtor"
)

// scenarioEnv is what differs between the real tor and its transcript.
type scenarioEnv struct {
	real bool
	// dir is where hidden-service directories go.
	dir string
	// torDir is the tor's directory as the replies name it.
	torDir string
	// other has a second controller change tor's options: SETCONF, or
	// RESETCONF when reset. The transcript marks the point with "!wait
	// name", and its replay releases the events recorded there.
	other func(name string, reset bool, entries ...control.ConfEntry)
}

// scenarioExtra are torrc lines that give every option type a non-trivial
// value.
var scenarioExtra = []config.Option{
	{Key: "ExitNodes", Value: "{us},{de}"},
	{Key: "KISTSchedRunInterval", Value: "20 msec"},
	{Key: "ContactInfo", Value: "from the torrc: \"quoted\" # é"},
	{Key: "MaxCircuitDirtiness", Value: "5 minutes"},
	{Key: "BandwidthRate", Value: "2 MB"},
}

func runScenario(t *testing.T, ctx context.Context, conn *control.Conn, e scenarioEnv) {
	cfg, err := config.Load(ctx, conn, nil)
	require.NoError(t, err)
	defer cfg.Close()

	// Every type of option, parsed from the GETCONF reply.
	get := cfg.Get
	b, err := get("DisableNetwork").Bool()
	require.NoError(t, err)
	assert.True(t, b)
	assert.Equal(t, config.Type("Boolean"), get("DisableNetwork").Type)
	assert.Equal(t, "auto", get("ConnectionPadding").String())
	assert.Equal(t, config.Type("Boolean+Auto"), get("ConnectionPadding").Type)
	n, err := get("ConnLimit").Int()
	require.NoError(t, err)
	assert.Equal(t, int64(1000), n)
	assert.Equal(t, config.Type("Integer"), get("ConnLimit").Type)
	n, err = get("PathBiasCircThreshold").Int()
	require.NoError(t, err)
	assert.Equal(t, int64(-1), n)
	assert.Equal(t, config.Type("SignedInteger"), get("PathBiasCircThreshold").Type)
	f, err := get("PathsNeededToBuildCircuits").Float()
	require.NoError(t, err)
	assert.Equal(t, -1.0, f)
	assert.Equal(t, config.Type("Float"), get("PathsNeededToBuildCircuits").Type)
	d, err := get("MaxCircuitDirtiness").Duration()
	require.NoError(t, err)
	assert.Equal(t, 5*time.Minute, d)
	assert.Equal(t, config.Type("TimeInterval"), get("MaxCircuitDirtiness").Type)
	d, err = get("KISTSchedRunInterval").Duration()
	require.NoError(t, err)
	assert.Equal(t, 20*time.Millisecond, d)
	assert.Equal(t, config.Type("TimeMsecInterval"), get("KISTSchedRunInterval").Type)
	sz, err := get("BandwidthRate").DataSize()
	require.NoError(t, err)
	assert.Equal(t, uint64(2<<20), sz)
	assert.Equal(t, config.Type("DataSize"), get("BandwidthRate").Type)
	assert.Equal(t, "from the torrc: \"quoted\" # é", get("ContactInfo").String())
	assert.Equal(t, config.Type("String"), get("ContactInfo").Type)
	assert.Equal(t, filepath.Join(e.torDir, "data"), get("DataDirectory").String())
	assert.Equal(t, config.Type("Filename"), get("DataDirectory").Type)
	assert.Contains(t, get("LongLivedPorts").List(), "22")
	assert.Equal(t, config.Type("CommaList"), get("LongLivedPorts").Type)
	assert.Equal(t, []string{"{us}", "{de}"}, get("ExitNodes").List())
	assert.Equal(t, config.Type("RouterList"), get("ExitNodes").Type)
	assert.Equal(t, []string{"notice stdout"}, get("Log").Lines())
	assert.Equal(t, config.Type("LineList"), get("Log").Type)
	assert.Equal(t, []string{"0"}, get("SocksPort").Lines())
	assert.Equal(t, config.Type("Dependent"), get("SocksPort").Type)
	assert.Equal(t, []string{"auto"}, get("ControlPort").Lines())
	assert.Equal(t, config.Type("Virtual"), get("HiddenServiceOptions").Type)
	assert.False(t, get("HiddenServiceOptions").IsSet())
	assert.False(t, get("Nickname").IsSet(), "unset")
	assert.True(t, get("ExcludeNodes").IsSet(), "tor reports an empty router list as Key=")
	// Defaults and typed comparison with them.
	dd, err := cfg.Default("MaxCircuitDirtiness").Duration()
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, dd)
	assert.True(t, cfg.IsDefault("ConnLimit"))
	assert.True(t, cfg.IsDefault("DormantClientTimeout"), "86400 is \"24 hours\"")
	assert.False(t, cfg.IsDefault("MaxCircuitDirtiness"))
	assert.False(t, cfg.IsDefault("DisableNetwork"))

	// One atomic SETCONF with awkward bytes, a list and two complete
	// hidden-service groups.
	require.NoError(t, cfg.Set("ContactInfo", "tab\there \"q\" \\ # é\nline2"))
	require.NoError(t, cfg.Set("MapAddress", "a.example b.example", "c.example d.example"))
	hs1 := config.HiddenService{Dir: filepath.Join(e.dir, "hs1"), Version: 3, Ports: []string{"80 127.0.0.1:8080", "81 127.0.0.1:8081"}}
	hs2 := config.HiddenService{Dir: filepath.Join(e.dir, "hs2"), Ports: []string{"82"}, Options: []config.Option{{Key: "HiddenServiceMaxStreams", Value: "5"}}}
	require.NoError(t, cfg.SetHiddenServices(hs1, hs2))
	require.NoError(t, cfg.Apply(ctx))
	assert.Empty(t, cfg.Pending())
	assert.Equal(t, "tab\there \"q\" \\ # é\nline2", cfg.Current("ContactInfo").String())
	assert.Equal(t, []string{"a.example b.example", "c.example d.example"}, cfg.Current("MapAddress").Lines())
	hs := cfg.HiddenServices()
	require.Len(t, hs, 2)
	assert.Equal(t, "hs1", filepath.Base(hs[0].Dir))
	assert.Equal(t, hs1.Ports, hs[0].Ports)
	assert.Equal(t, 3, hs[0].Version)
	assert.Equal(t, hs2.Ports, hs[1].Ports)
	assert.Equal(t, hs2.Options, hs[1].Options)

	// Refusals: 513 and 553 name the option; nothing changes.
	for _, c := range []struct {
		option, value string
		code          int
	}{{"ConnLimit", "abc", 513}, {"DataDirectory", "/elsewhere", 553}} {
		require.NoError(t, cfg.Set("ContactInfo", "not applied"))
		require.NoError(t, cfg.Set(c.option, c.value))
		var aerr *config.ApplyError
		require.ErrorAs(t, cfg.Apply(ctx), &aerr)
		assert.Equal(t, c.code, aerr.Code)
		assert.Equal(t, []string{c.option}, aerr.Options)
		assert.Equal(t, "tab\there \"q\" \\ # é\nline2", cfg.Current("ContactInfo").String())
		cfg.Discard()
	}

	// Reset.
	require.NoError(t, cfg.Reset(ctx, "MaxCircuitDirtiness"))
	assert.True(t, cfg.IsDefault("MaxCircuitDirtiness"))

	// Save into a torrc we did not write is refused.
	require.ErrorIs(t, cfg.Save(ctx, config.SaveOptions{}), config.ErrNotOurTorrc)

	// Another controller's changes arrive through CONF_CHANGED: a list
	// replaced, values unset, a hidden service group changed.
	e.other("other", false, control.ConfEntry{Key: "MapAddress", Value: "e.example f.example"},
		control.ConfEntry{Key: "ContactInfo", Unset: true},
		control.ConfEntry{Key: "HiddenServiceDir", Value: hs2.Dir},
		control.ConfEntry{Key: "HiddenServicePort", Value: "83"},
		control.ConfEntry{Key: "HiddenServiceNumIntroductionPoints", Value: "4"})
	waitFor(t, cfg, "the other controller's change", func() bool { return cfg.Get("MapAddress").String() == "e.example f.example" })
	assert.Equal(t, []string{"e.example f.example"}, cfg.Get("MapAddress").Lines())
	assert.False(t, cfg.Get("ContactInfo").IsSet())
	hs = cfg.HiddenServices()
	require.Len(t, hs, 1)
	assert.Equal(t, "hs2", filepath.Base(hs[0].Dir))
	assert.Equal(t, []string{"83"}, hs[0].Ports)
	assert.Equal(t, []config.Option{{Key: "HiddenServiceNumIntroductionPoints", Value: "4"}}, hs[0].Options)
	e.other("reset", true, control.ConfEntry{Key: "HiddenServiceOptions", Unset: true}, control.ConfEntry{Key: "MapAddress", Unset: true})
	waitFor(t, cfg, "the reset", func() bool { return len(cfg.HiddenServices()) == 0 && !cfg.Get("MapAddress").IsSet() })

	// Close ends the subscription (SETEVENTS with an empty mask, sent
	// before any later command).
	require.NoError(t, cfg.Close())
	_, err = conn.GetInfoValue(ctx, "version")
	require.NoError(t, err)
}

func TestScenario(t *testing.T) {
	t.Run("real", func(t *testing.T) {
		tor := testtor.Start(t, testtor.Options{NoCookie: true, Extra: scenarioExtra})
		nc, err := net.Dial("unix", tor.ControlSocket)
		require.NoError(t, err)
		rec := &syncbuf.Buffer{}
		if *capture {
			nc = controltest.Record(nc, rec)
		}
		conn := control.NewConn(nc)
		defer conn.Close()
		ctx := testCtx(t)
		require.NoError(t, conn.Authenticate(ctx))
		other := tor.Connect(t)
		e := scenarioEnv{real: true, dir: tor.Dir, torDir: tor.Dir,
			other: func(name string, reset bool, es ...control.ConfEntry) {
				rec.WriteString("!wait " + name + "\n")
				if reset {
					require.NoError(t, other.ResetConf(ctx, es...))
				} else {
					require.NoError(t, other.SetConf(ctx, es...))
				}
			},
		}
		runScenario(t, ctx, conn, e)
		conn.Close()
		assert.True(t, tor.Running(), "tor exited:\n%s", tor.Output())
		if *capture && !t.Failed() {
			saveTranscript(t, tor, rec.String())
		}
	})
	if *capture {
		return
	}
	t.Run("transcript", func(t *testing.T) {
		srv, tr := controltest.NewTranscriptServer(t, transcriptFile)
		ctx := testCtx(t)
		conn, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
		require.NoError(t, err)
		defer conn.Close()
		runScenario(t, ctx, conn, scenarioEnv{dir: t.TempDir(), torDir: sanitizedDir,
			other: func(name string, _ bool, _ ...control.ConfEntry) { tr.Release(name) }})
	})
}

// saveTranscript writes the recording with the tor's directory rewritten:
// to sanitizedDir in what tor sent, and to a pattern in the commands (the
// replay puts hidden services in its own temporary directory).
func saveTranscript(t *testing.T, tor *testtor.Tor, text string) {
	var out strings.Builder
	fmt.Fprintf(&out, "# Scenario recorded from tor %s (go test ./config -run TestScenario/real -capture).\n", torVersion(t, tor))
	fmt.Fprintf(&out, "# The tor's directory is rewritten to %s; commands naming it are patterns.\n", sanitizedDir)
	for _, line := range strings.SplitAfter(text, "\n") {
		if cmd, ok := strings.CutPrefix(line, "C: "); ok && strings.Contains(cmd, tor.Dir) {
			parts := strings.Split(strings.TrimSuffix(cmd, "\n"), tor.Dir)
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			out.WriteString("C~ ^" + strings.Join(parts, `/[^"]*`) + "$\n")
			continue
		}
		out.WriteString(strings.ReplaceAll(line, tor.Dir, sanitizedDir))
	}
	require.NoError(t, os.WriteFile(transcriptFile, []byte(out.String()), 0o644))
}

func torVersion(t *testing.T, tor *testtor.Tor) string {
	v, err := tor.Connect(t).GetInfoValue(context.Background(), "version")
	if err != nil {
		return "(version unknown)"
	}
	return v
}
