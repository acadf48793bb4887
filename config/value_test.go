package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValueTyped(t *testing.T) {
	v := newValue("SafeLogging", typeBoolean, "1")
	b, err := v.Bool()
	require.NoError(t, err)
	assert.True(t, b)
	_, err = newValue("X", typeBoolean, "yes").Bool()
	assert.ErrorIs(t, err, ErrType)
	_, err = newValue("X", typeBoolean).Bool()
	assert.ErrorIs(t, err, ErrType, "unset")

	for s, want := range map[string]autoBool{"0": autoFalse, "1": autoTrue, "auto": autoAuto, "AUTO": autoAuto} {
		a, err := newValue("ConnectionPadding", typeAutoBool, s).autoBool()
		require.NoError(t, err)
		assert.Equal(t, want, a)
	}
	_, err = newValue("X", typeAutoBool, "maybe").autoBool()
	assert.ErrorIs(t, err, ErrType)

	n, err := newValue("PathBiasCircThreshold", typeSignedInteger, "-1").Int()
	require.NoError(t, err)
	assert.Equal(t, int64(-1), n)
	u, err := newValue("__OwningControllerFD", typeInteger, "18446744073709551615").Uint()
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<64-1), u)
	_, err = newValue("ConnLimit", typeInteger, "abc").Int()
	assert.ErrorIs(t, err, ErrType)

	f, err := newValue("PathsNeededToBuildCircuits", typeFloat, "-1.000000").Float()
	require.NoError(t, err)
	assert.Equal(t, -1.0, f)

	for s, want := range map[string]time.Duration{
		"600": 10 * time.Minute, "10 minutes": 10 * time.Minute, "1 second": time.Second,
		"24 hours": 24 * time.Hour, "2 WEEKS": 14 * 24 * time.Hour, "1.5 minutes": 90 * time.Second,
		"1 month": 2629728 * time.Second,
	} {
		d, err := newValue("MaxCircuitDirtiness", typeTimeInterval, s).Duration()
		require.NoError(t, err, s)
		assert.Equal(t, want, d, s)
	}
	for s, want := range map[string]time.Duration{"0": 0, "0 msec": 0, "250": 250 * time.Millisecond, "1 second": time.Second, "2 minutes": 2 * time.Minute} {
		d, err := newValue("KISTSchedRunInterval", typeTimeMsecInterval, s).Duration()
		require.NoError(t, err, s)
		assert.Equal(t, want, d, s)
	}
	for _, bad := range []string{"", "minutes", "5 fortnights", "-5 seconds"} {
		_, err := newValue("X", typeTimeInterval, bad).Duration()
		assert.ErrorIs(t, err, ErrType, "%q", bad)
	}

	for s, want := range map[string]uint64{
		"1073741824": 1 << 30, "1 GB": 1 << 30, "0 bytes": 0, "512 KB": 512 << 10, "2 MB": 2 << 20,
		"10 mbits": 10 << 17, "1 TB": 1 << 40, "1.5 KB": 1536, "8 kilobits": 1 << 10,
	} {
		n, err := newValue("BandwidthRate", typeDataSize, s).DataSize()
		require.NoError(t, err, s)
		assert.Equal(t, want, n, s)
	}
	_, err = newValue("X", typeDataSize, "1 parsec").DataSize()
	assert.ErrorIs(t, err, ErrType)
	_, err = newValue("X", typeDataSize, "99999999999999 TB").DataSize()
	assert.ErrorIs(t, err, ErrType, "overflow")

	tm, err := newValue("X", typeTime, "2026-11-22 07:46:33").Time()
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 22, 7, 46, 33, 0, time.UTC), tm)

	assert.Equal(t, []string{"21", "22", "706"}, newValue("LongLivedPorts", typeCommaList, "21, 22,,706").List())
	assert.Equal(t, []string{"{us}", "{de}"}, newValue("ExitNodes", typeRouterList, "{us},{de}").List())
	assert.Nil(t, newValue("ExitNodes", typeRouterList, "").List(), "an empty router list has no items")
	assert.Equal(t, []string{"notice stdout", "info file /x"}, newValue("Log", typeLineList, "notice stdout", "info file /x").List())

	// An unknown type is kept as a string.
	w := newValue("FutureOption", Type("Frobnicator"), "some value")
	assert.Equal(t, "some value", w.String())
	assert.True(t, w.IsSet())

	// Unset and empty are different.
	assert.False(t, newValue("ContactInfo", typeString).IsSet())
	empty := newValue("LongLivedPorts", typeCommaList, "")
	assert.True(t, empty.IsSet())
	assert.Equal(t, "", empty.String())
	assert.Equal(t, []string{""}, empty.Lines())
}

func TestValueNormalizedDefaults(t *testing.T) {
	cases := []struct {
		typ      Type
		got, def string
	}{
		{typeTimeInterval, "600", "10 minutes"},
		{typeTimeMsecInterval, "0", "0 msec"},
		{typeTimeMsecInterval, "1000", "1 second"},
		{typeDataSize, "1073741824", "1 GB"},
		{typeFloat, "-1.000000", "-1.0"},
		{typeFloat, "0.100000", "0.1"},
		{typeCommaList, ".onion,.exit", ".onion, .exit"},
		{typeAutoBool, "auto", "AUTO"},
	}
	for _, c := range cases {
		a, b := newValue("X", c.typ, c.got), newValue("X", c.typ, c.def)
		assert.Equal(t, b.normalized(), a.normalized(), "%s %q vs %q", c.typ, c.got, c.def)
	}
	assert.NotEqual(t, newValue("X", typeTimeInterval, "601").normalized(), newValue("X", typeTimeInterval, "10 minutes").normalized())
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "90 seconds", formatDuration(90*time.Second+300*time.Millisecond))
	assert.Equal(t, "1500 msec", formatMsecDuration(1500*time.Millisecond))
	assert.Equal(t, "1", formatBool(true))
	assert.Equal(t, "0", formatBool(false))
	assert.Equal(t, "auto", autoAuto.String())
}

func TestBuiltinSchema(t *testing.T) {
	s := BuiltinSchema()
	assert.Greater(t, len(s.Names()), 300)
	types := map[Type]string{}
	for _, n := range s.Names() {
		o, ok := s.Lookup(n)
		require.True(t, ok)
		types[o.Type] = n
	}
	for _, typ := range []Type{typeBoolean, typeAutoBool, typeInteger, typeSignedInteger, typeFloat, typeTimeInterval,
		typeTimeMsecInterval, typeDataSize, typeString, typeFilename, typeCommaList, typeRouterList, typeLineList,
		typeDependent, typeVirtual} {
		assert.Contains(t, types, typ, "tor 0.4.9 lists type %s", typ)
	}
	o, ok := s.Lookup("hiddenserviceport")
	require.True(t, ok)
	assert.Equal(t, "HiddenServicePort", o.Name)
	assert.Equal(t, "HiddenServiceOptions", o.Group)
	assert.True(t, o.MultiValued())
	o, _ = s.Lookup("__SocksPort")
	assert.Equal(t, "SocksPortLines", o.Group)
	o, _ = s.Lookup("SocksPort")
	assert.Equal(t, "SocksPortLines", o.Group)
	o, _ = s.Lookup("HiddenServiceSingleHopMode")
	assert.Equal(t, "", o.Group, "a global HiddenService* Boolean is no group member")
	assert.Equal(t, []string{"__SocksPort", "SocksPort"}, s.Members("SocksPortLines"))
	assert.Contains(t, s.Members("HiddenServiceOptions"), "HiddenServiceDir")
	// Every Dependent option of tor 0.4.9 belongs to a group.
	for _, n := range s.Names() {
		if o, _ := s.Lookup(n); o.Type == typeDependent {
			assert.NotEmpty(t, o.Group, n)
		}
	}
}

func TestParseConfigNames(t *testing.T) {
	s, err := parseConfigNames("Foo Boolean\nBar Dependant some doc text\nBarLines Virtual\r\n\nBaz Frobnicator\n")
	require.NoError(t, err)
	o, _ := s.Lookup("bar")
	assert.Equal(t, typeDependent, o.Type, "old spelling")
	assert.Equal(t, "some doc text", o.Doc)
	assert.Equal(t, "BarLines", o.Group)
	o, _ = s.Lookup("Baz")
	assert.Equal(t, Type("Frobnicator"), o.Type, "unknown types are kept")
	_, err = parseConfigNames("JustAName\n")
	assert.Error(t, err)
}

func TestParseDefaults(t *testing.T) {
	s := BuiltinSchema()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "config", "defaults-0.4.9.11.txt"))
	require.NoError(t, err)
	require.NoError(t, s.parseDefaults(string(b)))
	o, _ := s.Lookup("ConnLimit")
	assert.Equal(t, "1000", o.Default.String())
	o, _ = s.Lookup("MaxCircuitDirtiness")
	d, err := o.Default.Duration()
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, d)
	o, _ = s.Lookup("DirAuthority")
	assert.Greater(t, len(o.Default.Lines()), 5, "multi-valued default")
	assert.True(t, strings.HasPrefix(o.Default.Lines()[0], "moria1 "))
	o, _ = s.Lookup("___UsingTestNetworkDefaults")
	assert.Equal(t, typeUnknown, o.Type, "a default for an option config/names does not list is kept")

	// Older tors do not quote the values.
	s2 := BuiltinSchema()
	require.NoError(t, s2.parseDefaults("ConnLimit 1000\nContactInfo \"a \\\"b\\\"\"\n"))
	o, _ = s2.Lookup("ConnLimit")
	assert.Equal(t, "1000", o.Default.String())
	o, _ = s2.Lookup("ContactInfo")
	assert.Equal(t, `a "b"`, o.Default.String())
	assert.Error(t, s2.parseDefaults("ConnLimit \"1000\" junk\n"))
	assert.Error(t, s2.parseDefaults(" 1000\n"))
}

func TestCheckNames(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "config", "list-torrc-options-0.4.9.11.txt"))
	require.NoError(t, err)
	s, err := parseOptionList(b)
	require.NoError(t, err)
	assert.NoError(t, s.CheckNames("SocksPort", "socksport", "HiddenServiceDir", "__OwningControllerProcess"))
	err = s.CheckNames("SocksPrt", "ControlPort", "Bogus_Thing", "HiddenServiceOptions")
	require.ErrorIs(t, err, ErrUnknownOption)
	assert.Contains(t, err.Error(), "SocksPrt (did you mean SocksPort?)")
	assert.Contains(t, err.Error(), "Bogus_Thing")
	assert.Contains(t, err.Error(), "HiddenServiceOptions", "a virtual option cannot be set")
	assert.NotContains(t, err.Error(), "ControlPort,")
	o, _ := s.Lookup("HiddenServicePort")
	assert.Equal(t, "HiddenServiceOptions", o.Group, "groups are linked for a binary's schema too")

	var rc Torrc
	rc.Add("SocksPort", "0").Add("DataDirectry", "/x")
	err = s.checkTorrc(&rc)
	require.ErrorIs(t, err, ErrUnknownOption)
	assert.Contains(t, err.Error(), "did you mean DataDirectory?")

	_, err = parseOptionList([]byte("Nov 22 08:09:33.853 [notice] Tor 0.4.9.11 running\n"))
	assert.Error(t, err)
}

func TestHiddenServicesParseRender(t *testing.T) {
	lines := []Option{
		{"HiddenServiceDir", "/hs1"},
		{"HiddenServicePort", "80 127.0.0.1:8080"},
		{"HiddenServicePort", "81 127.0.0.1:8081"},
		{"HiddenServiceVersion", "3"},
		{"HiddenServiceDir", "/hs2"},
		{"HiddenServicePort", "82"},
		{"HiddenServiceMaxStreams", "5"},
	}
	hs := ParseHiddenServices(lines)
	require.Len(t, hs, 2)
	assert.Equal(t, HiddenService{Dir: "/hs1", Version: 3, Ports: []string{"80 127.0.0.1:8080", "81 127.0.0.1:8081"}}, hs[0])
	assert.Equal(t, HiddenService{Dir: "/hs2", Ports: []string{"82"}, Options: []Option{{"HiddenServiceMaxStreams", "5"}}}, hs[1])
	v, ok := hs[1].Option("hiddenservicemaxstreams")
	assert.True(t, ok)
	assert.Equal(t, "5", v)
	// Rendering puts each group back together, Dir first.
	assert.Equal(t, ParseHiddenServices(hiddenServiceLines(hs)), hs)
	assert.Equal(t, Option{"HiddenServiceVersion", "3"}, hs[0].Lines()[1])

	assert.Nil(t, ParseHiddenServices([]Option{{"HiddenServiceOptions", ""}}))
	orphan := ParseHiddenServices([]Option{{"HiddenServicePort", "80"}})
	assert.Equal(t, []HiddenService{{Ports: []string{"80"}}}, orphan, "nothing is lost")

	assert.ErrorIs(t, HiddenService{}.validate(), ErrInvalidOption)
	assert.ErrorIs(t, HiddenService{Dir: "/x", Options: []Option{{"SocksPort", "1"}}}.validate(), ErrInvalidOption)
	assert.ErrorIs(t, HiddenService{Dir: "/x\x00"}.validate(), ErrInvalidOption)
}

func TestOwnedTorrc(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "torrc")
	owned, err := isOwnedTorrc(path)
	require.NoError(t, err)
	assert.False(t, owned)

	var rc Torrc
	rc.Add("SocksPort", "0")
	require.NoError(t, WriteOwnedTorrc(path, &rc))
	owned, err = isOwnedTorrc(path)
	require.NoError(t, err)
	assert.True(t, owned)
	st, err := os.Stat(path + ownedSuffix)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// SAVECONF rewrites the torrc (dropping comments); the sidecar stays valid.
	require.NoError(t, os.WriteFile(path, []byte("# This file was generated by Tor\nSocksPort 0\n"), 0o600))
	owned, _ = isOwnedTorrc(path)
	assert.True(t, owned)

	// A sidecar copied next to another torrc does not vouch for it.
	other := filepath.Join(dir, "other")
	b, _ := os.ReadFile(path + ownedSuffix)
	require.NoError(t, os.WriteFile(other+ownedSuffix, b, 0o600))
	owned, _ = isOwnedTorrc(other)
	assert.False(t, owned)

	// A relative path or one through a symlinked directory is the same file.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	owned, _ = isOwnedTorrc(filepath.Join(link, "torrc"))
	assert.True(t, owned)

	// A sidecar that is not a regular file does not count.
	dirPath := filepath.Join(dir, "d")
	require.NoError(t, os.Mkdir(dirPath+ownedSuffix, 0o700))
	owned, _ = isOwnedTorrc(dirPath)
	assert.False(t, owned)

	// A sidecar others may write does not count.
	require.NoError(t, os.Chmod(path+ownedSuffix, 0o622))
	owned, _ = isOwnedTorrc(path)
	assert.False(t, owned)
	require.NoError(t, os.Chmod(path+ownedSuffix, 0o600))

	// markOwned works before tor creates the torrc.
	missing := filepath.Join(dir, "later")
	require.NoError(t, markOwned(missing))
	owned, _ = isOwnedTorrc(missing)
	assert.True(t, owned)
	owned, _ = isOwnedTorrc("")
	assert.False(t, owned)
}
