package config_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// loadTor starts an offline tor and loads its configuration.
func loadTor(t *testing.T) (*testtor.Tor, *control.Conn, *config.TorConfig) {
	t.Helper()
	tt := testtor.Start(t, testtor.Options{})
	conn := tt.Connect(t)
	cfg, err := config.Load(testCtx(t), conn, nil)
	require.NoError(t, err)
	t.Cleanup(func() { cfg.Close() })
	return tt, conn, cfg
}

// getconf asks tor directly, bypassing the TorConfig.
func getconf(t *testing.T, conn *control.Conn, key string) []control.ConfEntry {
	t.Helper()
	e, err := conn.GetConf(testCtx(t), key)
	require.NoError(t, err)
	return e
}

// waitFor waits until cond holds, woken by every change of cfg.
func waitFor(t *testing.T, cfg *config.TorConfig, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		ch := cfg.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var awkward = []string{
	"plain",
	"with spaces inside",
	`a "q" b\c`,
	`"starts with quote`,
	"has # hash",
	"tab\there",
	"line1\nline2",
	"utf8 é ünïcode ☃",
	`C:\Users\tor\x`,
	`ends with backslash\`,
	"ctrl \x01\x7f bytes",
	"\r\nSIGNAL SHUTDOWN",
}

func TestTorAwkwardValuesRoundTrip(t *testing.T) {
	tt, conn, cfg := loadTor(t)
	ctx := testCtx(t)
	for _, v := range awkward {
		require.NoError(t, cfg.Set("ContactInfo", v))
		require.NoError(t, cfg.Apply(ctx), "%q", v)
		assert.Equal(t, v, cfg.Current("ContactInfo").String(), "local copy of %q", v)
		assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: v}}, getconf(t, conn, "ContactInfo"), "tor's value for %q", v)
		// A second TorConfig loading from scratch reads the same bytes.
		other, err := config.Load(ctx, tt.Connect(t), &config.LoadOptions{NoSync: true})
		require.NoError(t, err)
		assert.Equal(t, v, other.Get("ContactInfo").String())
		other.Close()
	}
	assert.True(t, tt.Running(), "the CR LF value did not become a command")
}

func TestTorMultiValued(t *testing.T) {
	_, conn, cfg := loadTor(t)
	ctx := testCtx(t)
	values := func() []string {
		var vs []string
		for _, e := range getconf(t, conn, "MapAddress") {
			if !e.Unset {
				vs = append(vs, e.Value)
			}
		}
		return vs
	}
	assert.False(t, cfg.Get("MapAddress").IsSet())

	require.NoError(t, cfg.Set("MapAddress", "a.example b.example", "c.example d.example"))
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []string{"a.example b.example", "c.example d.example"}, values())
	assert.Equal(t, values(), cfg.Current("MapAddress").Lines())

	require.NoError(t, cfg.Append("MapAddress", "e.example f.example"))
	assert.Equal(t, 2, len(cfg.Current("MapAddress").Lines()), "staged, not applied")
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []string{"a.example b.example", "c.example d.example", "e.example f.example"}, values())
	assert.Equal(t, values(), cfg.Current("MapAddress").Lines())

	require.NoError(t, cfg.Set("MapAddress", "x.example y.example"))
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []string{"x.example y.example"}, values())

	require.NoError(t, cfg.Clear("MapAddress"))
	require.NoError(t, cfg.Apply(ctx))
	assert.Nil(t, values())
	assert.False(t, cfg.Current("MapAddress").IsSet())

	// A port group: SocksPort and __SocksPort share one ordered list.
	require.NoError(t, cfg.Set("SocksPort", "127.0.0.1:auto", "127.0.0.1:auto IsolateDestAddr"))
	require.NoError(t, cfg.Apply(ctx))
	assert.Len(t, cfg.Current("SocksPort").Lines(), 2)
	require.NoError(t, cfg.Set("SocksPort", "0"))
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []string{"0"}, cfg.Current("SocksPort").Lines())

	// A CommaList: cleared is an empty list, which is not unset.
	require.NoError(t, cfg.Clear("LongLivedPorts"))
	require.NoError(t, cfg.Apply(ctx))
	v := cfg.Current("LongLivedPorts")
	assert.True(t, v.IsSet())
	assert.Empty(t, v.List())
	assert.False(t, cfg.IsDefault("LongLivedPorts"))
	require.NoError(t, cfg.Reset(ctx, "LongLivedPorts"))
	assert.Contains(t, cfg.Current("LongLivedPorts").List(), "22")
	assert.True(t, cfg.IsDefault("LongLivedPorts"))
}

func TestTorHiddenServices(t *testing.T) {
	tt, conn, cfg := loadTor(t)
	ctx := testCtx(t)
	hs1 := config.HiddenService{Dir: filepath.Join(tt.Dir, "hs1"), Version: 3,
		Ports: []string{"80 127.0.0.1:8080", "81 127.0.0.1:8081"}}
	hs2 := config.HiddenService{Dir: filepath.Join(tt.Dir, "hs2"), Ports: []string{"82"},
		Options: []config.Option{{Key: "HiddenServiceMaxStreams", Value: "5"}, {Key: "HiddenServiceNumIntroductionPoints", Value: "4"}}}
	require.NoError(t, cfg.AddHiddenService(hs1))
	require.NoError(t, cfg.AddHiddenService(hs2))
	assert.Empty(t, cfg.Current("HiddenServiceDir").Lines())
	require.NoError(t, cfg.Apply(ctx))
	want := []config.HiddenService{hs1, hs2}
	assert.Equal(t, want, cfg.HiddenServices())

	// Tor has exactly these groups, in order.
	e := getconf(t, conn, "HiddenServiceOptions")
	var lines []config.Option
	for _, x := range e {
		lines = append(lines, config.Option{Key: x.Key, Value: x.Value})
	}
	assert.Equal(t, want, config.ParseHiddenServices(lines))

	// A fresh TorConfig reads them back as groups.
	other, err := config.Load(ctx, tt.Connect(t), &config.LoadOptions{NoSync: true})
	require.NoError(t, err)
	assert.Equal(t, want, other.HiddenServices())
	other.Close()

	// Change the second group only: the first one is sent again, unchanged.
	hs2b := hs2
	hs2b.Ports = []string{"83 127.0.0.1:8083"}
	require.NoError(t, cfg.SetHiddenServices(hs1, hs2b))
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []config.HiddenService{hs1, hs2b}, cfg.HiddenServices())

	removed, err := cfg.RemoveHiddenService(hs1.Dir)
	require.NoError(t, err)
	require.True(t, removed)
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, []config.HiddenService{hs2b}, cfg.HiddenServices())

	require.NoError(t, cfg.SetHiddenServices())
	require.NoError(t, cfg.Apply(ctx))
	assert.Empty(t, cfg.HiddenServices())
	assert.Equal(t, []control.ConfEntry{{Key: "HiddenServiceOptions", Unset: true}}, getconf(t, conn, "HiddenServiceOptions"))
}

func TestTorRejectedApplyChangesNothing(t *testing.T) {
	tt, conn, cfg := loadTor(t)
	ctx := testCtx(t)
	require.NoError(t, cfg.Set("ContactInfo", "before"))
	require.NoError(t, cfg.Apply(ctx))

	cases := []struct {
		option, value string
		code          int
		sentinel      error
	}{
		{"ConnLimit", "abc", 513, nil},
		{"DataDirectory", "/somewhere/else", 553, control.ErrInvalidConfigValue},
	}
	for _, c := range cases {
		require.NoError(t, cfg.Set("ContactInfo", "after"))
		require.NoError(t, cfg.Set(c.option, c.value))
		before := cfg.Current(c.option)
		err := cfg.Apply(ctx)
		var aerr *config.ApplyError
		require.ErrorAs(t, err, &aerr, c.option)
		assert.Equal(t, c.code, aerr.Code, aerr.Text)
		assert.Equal(t, []string{c.option}, aerr.Options, "the error names the option: %s", aerr.Text)
		assert.Equal(t, "SETCONF", aerr.Command)
		assert.Contains(t, err.Error(), c.option)
		if c.sentinel != nil {
			assert.ErrorIs(t, err, c.sentinel)
		}
		// Both sides unchanged, and the changes still staged.
		assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: "before"}}, getconf(t, conn, "ContactInfo"))
		assert.Equal(t, "before", cfg.Current("ContactInfo").String())
		assert.Equal(t, before, cfg.Current(c.option))
		assert.ElementsMatch(t, []string{"ContactInfo", c.option}, cfg.Pending())
		cfg.Discard(c.option)
	}
	require.NoError(t, cfg.Apply(ctx))
	assert.Equal(t, "after", cfg.Current("ContactInfo").String())

	// 552: an option tor does not know never reaches tor from a loaded
	// TorConfig: Set refuses it.
	assert.ErrorIs(t, cfg.Set("NoSuchOpt", "1"), config.ErrUnknownOption)
	// A bad hidden-service group is refused by tor as a whole.
	require.NoError(t, cfg.AddHiddenService(config.HiddenService{Dir: filepath.Join(tt.Dir, "hs"), Ports: []string{"99999"}}))
	var aerr *config.ApplyError
	require.ErrorAs(t, cfg.Apply(ctx), &aerr)
	assert.Equal(t, 513, aerr.Code)
	assert.Equal(t, []string{"HiddenServiceDir", "HiddenServicePort"}, aerr.Options)
	assert.Empty(t, cfg.Current("HiddenServiceDir").Lines())
	cfg.Discard()

	// Tor 0.4.9 exits when it cannot create a hidden service's directory,
	// so such a service never reaches it.
	assert.ErrorIs(t, cfg.AddHiddenService(config.HiddenService{Dir: "relative/dir", Ports: []string{"80"}}), config.ErrInvalidOption)
	require.NoError(t, cfg.AddHiddenService(config.HiddenService{Dir: filepath.Join(tt.Dir, "missing", "hs"), Ports: []string{"80"}}))
	assert.ErrorIs(t, cfg.Apply(ctx), config.ErrInvalidOption)
	assert.True(t, tt.Running())
	assert.Equal(t, []control.ConfEntry{{Key: "HiddenServiceOptions", Unset: true}}, getconf(t, conn, "HiddenServiceOptions"))
}

func TestTorReset(t *testing.T) {
	_, conn, cfg := loadTor(t)
	ctx := testCtx(t)
	require.NoError(t, cfg.SetInt("ConnLimit", 2000))
	require.NoError(t, cfg.SetDuration("MaxCircuitDirtiness", 5*time.Minute))
	require.NoError(t, cfg.Apply(ctx))
	n, err := cfg.Get("ConnLimit").Int()
	require.NoError(t, err)
	assert.Equal(t, int64(2000), n)
	assert.Equal(t, "300", cfg.Current("MaxCircuitDirtiness").String(), "tor's rendering is read back")
	assert.False(t, cfg.IsDefault("ConnLimit"))

	require.NoError(t, cfg.Set("ConnLimit", "3000"))
	require.NoError(t, cfg.Reset(ctx, "ConnLimit", "maxcircuitdirtiness"))
	assert.Empty(t, cfg.Pending(), "Reset drops staged changes of its options")
	assert.Equal(t, "1000", cfg.Get("ConnLimit").String())
	assert.True(t, cfg.IsDefault("ConnLimit"))
	assert.True(t, cfg.IsDefault("MaxCircuitDirtiness"), "600 equals the default \"10 minutes\"")
	assert.Equal(t, []control.ConfEntry{{Key: "ConnLimit", Value: "1000"}}, getconf(t, conn, "ConnLimit"))
	assert.ErrorIs(t, cfg.Reset(ctx, "NoSuchOpt"), config.ErrUnknownOption)
}

func TestTorSyncFromAnotherController(t *testing.T) {
	tt, _, cfg := loadTor(t)
	ctx := testCtx(t)
	other := tt.Connect(t)

	require.NoError(t, other.SetConf(ctx,
		control.ConfEntry{Key: "ContactInfo", Value: "set by other\tcontroller"},
		control.ConfEntry{Key: "MapAddress", Value: "a.example b.example"},
		control.ConfEntry{Key: "MapAddress", Value: "c.example d.example"},
		control.ConfEntry{Key: "HiddenServiceDir", Value: filepath.Join(tt.Dir, "hsA")},
		control.ConfEntry{Key: "HiddenServicePort", Value: "80 127.0.0.1:1"},
		control.ConfEntry{Key: "HiddenServiceDir", Value: filepath.Join(tt.Dir, "hsB")},
		control.ConfEntry{Key: "HiddenServicePort", Value: "81 127.0.0.1:2"},
		control.ConfEntry{Key: "HiddenServiceMaxStreams", Value: "7"},
	))
	waitFor(t, cfg, "the other controller's values", func() bool {
		return cfg.Get("ContactInfo").String() == "set by other\tcontroller" && len(cfg.HiddenServices()) == 2
	})
	assert.Equal(t, []string{"a.example b.example", "c.example d.example"}, cfg.Get("MapAddress").Lines())
	assert.Equal(t, []config.HiddenService{
		{Dir: filepath.Join(tt.Dir, "hsA"), Ports: []string{"80 127.0.0.1:1"}},
		{Dir: filepath.Join(tt.Dir, "hsB"), Ports: []string{"81 127.0.0.1:2"}, Options: []config.Option{{Key: "HiddenServiceMaxStreams", Value: "7"}}},
	}, cfg.HiddenServices())

	// __SocksPort replaces SocksPort (one group): the event only lists the
	// new line, and SocksPort must read as unset afterwards.
	require.NoError(t, other.SetConf(ctx, control.ConfEntry{Key: "__SocksPort", Value: "0"}))
	waitFor(t, cfg, "__SocksPort", func() bool { return cfg.Get("__SocksPort").String() == "0" })
	assert.False(t, cfg.Get("SocksPort").IsSet())

	// Unset values: bare SETCONF and RESETCONF.
	require.NoError(t, other.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Unset: true}, control.ConfEntry{Key: "MapAddress", Unset: true}))
	require.NoError(t, other.ResetConf(ctx, control.ConfEntry{Key: "HiddenServiceOptions", Unset: true}, control.ConfEntry{Key: "SocksPort", Unset: true}))
	waitFor(t, cfg, "the unset values", func() bool {
		return !cfg.Get("ContactInfo").IsSet() && !cfg.Get("MapAddress").IsSet() && len(cfg.HiddenServices()) == 0 && !cfg.Get("__SocksPort").IsSet()
	})

	// After Close, changes are no longer followed.
	require.NoError(t, cfg.Close())
	require.NoError(t, other.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: "after close"}))
	// Prove the change happened (and its event went out) before checking.
	assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: "after close"}}, getconf(t, other, "ContactInfo"))
	assert.False(t, cfg.Get("ContactInfo").IsSet())
	assert.ErrorIs(t, cfg.Set("ContactInfo", "x"), net.ErrClosed)
	assert.ErrorIs(t, cfg.Apply(ctx), net.ErrClosed)
}

// ownTor runs tor with the given torrc (and an empty defaults torrc); the
// returned stop function kills it and waits for it.
func ownTor(t *testing.T, torrc, socket string) (stop func()) {
	t.Helper()
	defaults := filepath.Join(filepath.Dir(torrc), "defaults")
	require.NoError(t, os.WriteFile(defaults, nil, 0o600))
	cmd := exec.Command("tor", "-f", torrc, "--defaults-torrc", defaults, "--ignore-missing-torrc",
		"__OwningControllerProcess", strconv.Itoa(os.Getpid()))
	var out bytes.Buffer
	var outMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil {
			return stop
		}
		select {
		case <-exited:
			outMu.Lock()
			defer outMu.Unlock()
			t.Fatalf("tor exited:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("tor did not open its control socket")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func connectUnix(t *testing.T, socket string) *control.Conn {
	t.Helper()
	c, err := control.Connect(testCtx(t), "unix", socket, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// baseTorrc is an offline tor's torrc in dir, built with an offline
// TorConfig.
func baseTorrc(t *testing.T, dir string) *config.TorConfig {
	t.Helper()
	require.NoError(t, os.Chmod(dir, 0o700))
	c := config.New()
	require.NoError(t, c.Set("DataDirectory", filepath.Join(dir, "data")))
	require.NoError(t, c.Set("DisableNetwork", "1"))
	require.NoError(t, c.Set("SocksPort", "0"))
	require.NoError(t, c.Set("ControlSocket", filepath.Join(dir, "ctl")))
	require.NoError(t, c.Set("CookieAuthentication", "0"))
	require.NoError(t, c.Set("GeoIPFile", "/dev/null"))
	require.NoError(t, c.Set("GeoIPv6File", "/dev/null"))
	require.NoError(t, c.Set("Log", "notice stdout"))
	return c
}

func TestTorSaveOwnTorrcPersistsAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	torrc, socket := filepath.Join(dir, "torrc"), filepath.Join(dir, "ctl")
	require.NoError(t, config.WriteOwnedTorrc(torrc, baseTorrc(t, dir).Torrc()))

	stop := ownTor(t, torrc, socket)
	cfg, err := config.Load(ctx, connectUnix(t, socket), nil)
	require.NoError(t, err)
	defer cfg.Close()
	require.NoError(t, cfg.Set("ContactInfo", "saved \"value\" # with\ttab é"))
	require.NoError(t, cfg.AddHiddenService(config.HiddenService{Dir: filepath.Join(dir, "hs"), Ports: []string{"80 127.0.0.1:8080"}}))
	assert.ErrorIs(t, cfg.Save(ctx, config.SaveOptions{}), config.ErrUnapplied, "staged changes are not silently left out")
	require.NoError(t, cfg.Apply(ctx))
	require.NoError(t, cfg.Save(ctx, config.SaveOptions{}))
	saved, err := os.ReadFile(torrc)
	require.NoError(t, err)
	assert.Contains(t, string(saved), "generated by Tor")
	_, err = os.Stat(torrc + ".gotorcon")
	assert.NoError(t, err, "the ownership sidecar survives SAVECONF")
	cfg.Close()
	stop()
	require.NoError(t, os.Remove(socket))

	ownTor(t, torrc, socket)
	again, err := config.Load(ctx, connectUnix(t, socket), nil)
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, "saved \"value\" # with\ttab é", again.Get("ContactInfo").String())
	assert.Equal(t, []config.HiddenService{{Dir: filepath.Join(dir, "hs"), Ports: []string{"80 127.0.0.1:8080"}}}, again.HiddenServices())
	// A second Save into the tor-generated file is still allowed.
	require.NoError(t, again.Set("ContactInfo", "second save"))
	require.NoError(t, again.Apply(ctx))
	require.NoError(t, again.Save(ctx, config.SaveOptions{}))
	saved, err = os.ReadFile(torrc)
	require.NoError(t, err)
	assert.Contains(t, string(saved), "ContactInfo second save")
}

func TestTorSaveRefusedForForeignTorrc(t *testing.T) {
	tt, _, cfg := loadTor(t) // testtor writes its torrc itself, without a sidecar
	ctx := testCtx(t)
	before, err := os.ReadFile(tt.Torrc)
	require.NoError(t, err)
	require.NoError(t, cfg.Set("ContactInfo", "must not be saved"))
	require.NoError(t, cfg.Apply(ctx))

	err = cfg.Save(ctx, config.SaveOptions{})
	require.ErrorIs(t, err, config.ErrNotOurTorrc)
	assert.Contains(t, err.Error(), tt.Torrc)
	err = cfg.Save(ctx, config.SaveOptions{Force: true})
	require.ErrorIs(t, err, config.ErrNotOurTorrc, "FORCE is about %%include, not ownership")

	after, err := os.ReadFile(tt.Torrc)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "the torrc was not touched")
	entries, err := os.ReadDir(tt.Dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".orig"), "no backup made: %s", e.Name())
	}

	// The caller can insist.
	require.NoError(t, cfg.Save(ctx, config.SaveOptions{AllowUnowned: true}))
	after, err = os.ReadFile(tt.Torrc)
	require.NoError(t, err)
	assert.Contains(t, string(after), "must not be saved")
}

// TestTorOfflineTorrcLaunches builds a torrc offline, checks its names
// against the binary, launches tor with it and loads the same values back.
func TestTorOfflineTorrcLaunches(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	schema, err := config.SchemaFromBinary(ctx, "tor")
	require.NoError(t, err)

	c := baseTorrc(t, dir)
	require.NoError(t, c.Set("ContactInfo", `offline "quoted" \ # é`))
	require.NoError(t, c.Set("MapAddress", "a.example b.example", "c.example d.example"))
	hs := []config.HiddenService{
		{Dir: filepath.Join(dir, "hs1"), Version: 3, Ports: []string{"80 127.0.0.1:8080", "81 127.0.0.1:8081"}},
		{Dir: filepath.Join(dir, "hs2"), Ports: []string{"82"}, Options: []config.Option{{Key: "HiddenServiceMaxStreams", Value: "3"}}},
	}
	require.NoError(t, c.SetHiddenServices(hs...))
	rc := c.Torrc()
	require.NoError(t, schema.CheckNames(rc.Keys()...))

	bad := rc.Clone().Add("HiddenServicePrt", "80")
	err = schema.CheckNames(bad.Keys()...)
	require.ErrorIs(t, err, config.ErrUnknownOption)
	assert.Contains(t, err.Error(), "did you mean HiddenServicePort?")

	torrc := filepath.Join(dir, "torrc")
	require.NoError(t, config.WriteOwnedTorrc(torrc, rc))
	ownTor(t, torrc, filepath.Join(dir, "ctl"))
	loaded, err := config.Load(ctx, connectUnix(t, filepath.Join(dir, "ctl")), nil)
	require.NoError(t, err)
	defer loaded.Close()
	assert.Equal(t, `offline "quoted" \ # é`, loaded.Get("ContactInfo").String())
	assert.Equal(t, []string{"a.example b.example", "c.example d.example"}, loaded.Get("MapAddress").Lines())
	assert.Equal(t, hs, loaded.HiddenServices())

	// The loaded config renders (non-default options only) a torrc with the
	// same options.
	back := loaded.Torrc()
	for _, k := range rc.Keys() {
		if loaded.IsDefault(k) {
			assert.False(t, back.Has(k), k)
			continue
		}
		assert.Equal(t, rc.Values(k), back.Values(k), k)
	}
	assert.False(t, back.Has("ConnLimit"), "defaults are left out")
	assert.False(t, back.Has("__OwningControllerProcess"), "controller-only options are left out")
}

// TestTorLoadRoundTrips counts the commands Load sends to a real tor.
func TestTorLoadRoundTrips(t *testing.T) {
	tt := testtor.Start(t, testtor.Options{NoCookie: true})
	nc, err := (&netDialer{}).dial(tt.ControlSocket)
	require.NoError(t, err)
	var rec bytes.Buffer
	var recMu sync.Mutex
	conn := control.NewConn(recordConn(nc, &rec, &recMu))
	t.Cleanup(func() { conn.Close() })
	ctx := testCtx(t)
	require.NoError(t, conn.Authenticate(ctx))
	recMu.Lock()
	rec.Reset()
	recMu.Unlock()

	cfg, err := config.Load(ctx, conn, nil)
	require.NoError(t, err)
	defer cfg.Close()
	recMu.Lock()
	cmds := commandLines(rec.String())
	recMu.Unlock()
	t.Logf("Load sent %d commands for %d options: %s", len(cmds), len(cfg.Schema().Names()), strings.Join(firstWords(cmds), ", "))
	assert.LessOrEqual(t, len(cmds), 4, "Load is a bounded number of round trips")
	assert.Greater(t, len(cfg.Schema().Names()), 300)
}

func firstWords(lines []string) []string {
	var w []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 1 && len(l) > 40 {
			w = append(w, fmt.Sprintf("%s %s ... (%d bytes)", f[0], f[1], len(l)))
		} else {
			w = append(w, l)
		}
	}
	return w
}

func TestTorSaveWithIncludeNeedsForce(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	torrc, socket := filepath.Join(dir, "torrc"), filepath.Join(dir, "ctl")
	include := filepath.Join(dir, "extra.conf")
	require.NoError(t, os.WriteFile(include, []byte("ContactInfo from the include\n"), 0o600))
	rc := baseTorrc(t, dir).Torrc()
	rc.Add("%include", include)
	require.NoError(t, config.WriteOwnedTorrc(torrc, rc))
	ownTor(t, torrc, socket)
	cfg, err := config.Load(ctx, connectUnix(t, socket), nil)
	require.NoError(t, err)
	defer cfg.Close()
	assert.Equal(t, "from the include", cfg.Get("ContactInfo").String())

	before, err := os.ReadFile(torrc)
	require.NoError(t, err)
	require.ErrorIs(t, cfg.Save(ctx, config.SaveOptions{}), config.ErrNeedsForce)
	after, err := os.ReadFile(torrc)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	require.NoError(t, cfg.Save(ctx, config.SaveOptions{Force: true}))
	after, err = os.ReadFile(torrc)
	require.NoError(t, err)
	assert.NotContains(t, string(after), "%include")
	assert.Contains(t, string(after), "ContactInfo from the include")
}
