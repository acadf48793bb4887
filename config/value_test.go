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
	v := NewValue("SafeLogging", TypeBoolean, "1")
	b, err := v.Bool()
	require.NoError(t, err)
	assert.True(t, b)
	_, err = NewValue("X", TypeBoolean, "yes").Bool()
	assert.ErrorIs(t, err, ErrType)
	_, err = NewValue("X", TypeBoolean).Bool()
	assert.ErrorIs(t, err, ErrType, "unset")

	for s, want := range map[string]AutoBool{"0": False, "1": True, "auto": Auto, "AUTO": Auto} {
		a, err := NewValue("ConnectionPadding", TypeAutoBool, s).AutoBool()
		require.NoError(t, err)
		assert.Equal(t, want, a)
	}
	_, err = NewValue("X", TypeAutoBool, "maybe").AutoBool()
	assert.ErrorIs(t, err, ErrType)

	n, err := NewValue("PathBiasCircThreshold", TypeSignedInteger, "-1").Int()
	require.NoError(t, err)
	assert.Equal(t, int64(-1), n)
	u, err := NewValue("__OwningControllerFD", TypeInteger, "18446744073709551615").Uint()
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<64-1), u)
	_, err = NewValue("ConnLimit", TypeInteger, "abc").Int()
	assert.ErrorIs(t, err, ErrType)

	f, err := NewValue("PathsNeededToBuildCircuits", TypeFloat, "-1.000000").Float()
	require.NoError(t, err)
	assert.Equal(t, -1.0, f)

	for s, want := range map[string]time.Duration{
		"600": 10 * time.Minute, "10 minutes": 10 * time.Minute, "1 second": time.Second,
		"24 hours": 24 * time.Hour, "2 WEEKS": 14 * 24 * time.Hour, "1.5 minutes": 90 * time.Second,
		"1 month": 2629728 * time.Second,
	} {
		d, err := NewValue("MaxCircuitDirtiness", TypeTimeInterval, s).Duration()
		require.NoError(t, err, s)
		assert.Equal(t, want, d, s)
	}
	for s, want := range map[string]time.Duration{"0": 0, "0 msec": 0, "250": 250 * time.Millisecond, "1 second": time.Second, "2 minutes": 2 * time.Minute} {
		d, err := NewValue("KISTSchedRunInterval", TypeTimeMsecInterval, s).Duration()
		require.NoError(t, err, s)
		assert.Equal(t, want, d, s)
	}
	for _, bad := range []string{"", "minutes", "5 fortnights", "-5 seconds"} {
		_, err := NewValue("X", TypeTimeInterval, bad).Duration()
		assert.ErrorIs(t, err, ErrType, "%q", bad)
	}

	for s, want := range map[string]uint64{
		"1073741824": 1 << 30, "1 GB": 1 << 30, "0 bytes": 0, "512 KB": 512 << 10, "2 MB": 2 << 20,
		"10 mbits": 10 << 17, "1 TB": 1 << 40, "1.5 KB": 1536, "8 kilobits": 1 << 10,
	} {
		n, err := NewValue("BandwidthRate", TypeDataSize, s).DataSize()
		require.NoError(t, err, s)
		assert.Equal(t, want, n, s)
	}
	_, err = NewValue("X", TypeDataSize, "1 parsec").DataSize()
	assert.ErrorIs(t, err, ErrType)
	_, err = NewValue("X", TypeDataSize, "99999999999999 TB").DataSize()
	assert.ErrorIs(t, err, ErrType, "overflow")

	tm, err := NewValue("X", TypeTime, "2026-11-22 07:46:33").Time()
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 22, 7, 46, 33, 0, time.UTC), tm)

	assert.Equal(t, []string{"21", "22", "706"}, NewValue("LongLivedPorts", TypeCommaList, "21, 22,,706").List())
	assert.Equal(t, []string{"{us}", "{de}"}, NewValue("ExitNodes", TypeRouterList, "{us},{de}").List())
	assert.Nil(t, NewValue("ExitNodes", TypeRouterList, "").List(), "an empty router list has no items")
	assert.Equal(t, []string{"notice stdout", "info file /x"}, NewValue("Log", TypeLineList, "notice stdout", "info file /x").List())

	// An unknown type is kept as a string.
	w := NewValue("FutureOption", Type("Frobnicator"), "some value")
	assert.Equal(t, "some value", w.String())
	assert.True(t, w.IsSet())

	// Unset and empty are different.
	assert.False(t, NewValue("ContactInfo", TypeString).IsSet())
	empty := NewValue("LongLivedPorts", TypeCommaList, "")
	assert.True(t, empty.IsSet())
	assert.Equal(t, "", empty.String())
	assert.Equal(t, []string{""}, empty.Lines())
}

func TestValueNormalizedDefaults(t *testing.T) {
	cases := []struct {
		typ      Type
		got, def string
	}{
		{TypeTimeInterval, "600", "10 minutes"},
		{TypeTimeMsecInterval, "0", "0 msec"},
		{TypeTimeMsecInterval, "1000", "1 second"},
		{TypeDataSize, "1073741824", "1 GB"},
		{TypeFloat, "-1.000000", "-1.0"},
		{TypeFloat, "0.100000", "0.1"},
		{TypeCommaList, ".onion,.exit", ".onion, .exit"},
		{TypeAutoBool, "auto", "AUTO"},
	}
	for _, c := range cases {
		a, b := NewValue("X", c.typ, c.got), NewValue("X", c.typ, c.def)
		assert.Equal(t, b.normalized(), a.normalized(), "%s %q vs %q", c.typ, c.got, c.def)
	}
	assert.NotEqual(t, NewValue("X", TypeTimeInterval, "601").normalized(), NewValue("X", TypeTimeInterval, "10 minutes").normalized())
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "90 seconds", FormatDuration(90*time.Second+300*time.Millisecond))
	assert.Equal(t, "1500 msec", FormatMsecDuration(1500*time.Millisecond))
	assert.Equal(t, "1", FormatBool(true))
	assert.Equal(t, "0", FormatBool(false))
	assert.Equal(t, "auto", Auto.String())
}

func TestBuiltinSchema(t *testing.T) {
	s := BuiltinSchema()
	assert.Greater(t, s.Len(), 300)
	types := map[Type]string{}
	for _, n := range s.Names() {
		o, ok := s.Lookup(n)
		require.True(t, ok)
		types[o.Type] = n
	}
	for _, typ := range []Type{TypeBoolean, TypeAutoBool, TypeInteger, TypeSignedInteger, TypeFloat, TypeTimeInterval,
		TypeTimeMsecInterval, TypeDataSize, TypeString, TypeFilename, TypeCommaList, TypeRouterList, TypeLineList,
		TypeDependent, TypeVirtual} {
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
		if o, _ := s.Lookup(n); o.Type == TypeDependent {
			assert.NotEmpty(t, o.Group, n)
		}
	}
}

func TestParseConfigNames(t *testing.T) {
	s, err := ParseConfigNames("Foo Boolean\nBar Dependant some doc text\nBarLines Virtual\r\n\nBaz Frobnicator\n")
	require.NoError(t, err)
	o, _ := s.Lookup("bar")
	assert.Equal(t, TypeDependent, o.Type, "old spelling")
	assert.Equal(t, "some doc text", o.Doc)
	assert.Equal(t, "BarLines", o.Group)
	o, _ = s.Lookup("Baz")
	assert.Equal(t, Type("Frobnicator"), o.Type, "unknown types are kept")
	_, err = ParseConfigNames("JustAName\n")
	assert.Error(t, err)
}

func TestParseDefaults(t *testing.T) {
	s := BuiltinSchema()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "config", "defaults-0.4.9.11.txt"))
	require.NoError(t, err)
	require.NoError(t, s.ParseDefaults(string(b)))
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
	assert.Equal(t, TypeUnknown, o.Type, "a default for an option config/names does not list is kept")

	// Older tors do not quote the values.
	s2 := BuiltinSchema()
	require.NoError(t, s2.ParseDefaults("ConnLimit 1000\nContactInfo \"a \\\"b\\\"\"\n"))
	o, _ = s2.Lookup("ConnLimit")
	assert.Equal(t, "1000", o.Default.String())
	o, _ = s2.Lookup("ContactInfo")
	assert.Equal(t, `a "b"`, o.Default.String())
	assert.Error(t, s2.ParseDefaults("ConnLimit \"1000\" junk\n"))
	assert.Error(t, s2.ParseDefaults(" 1000\n"))
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
	err = s.CheckTorrc(&rc)
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
	owned, err := IsOwnedTorrc(path)
	require.NoError(t, err)
	assert.False(t, owned)

	var rc Torrc
	rc.Add("SocksPort", "0")
	require.NoError(t, WriteOwnedTorrc(path, &rc))
	owned, err = IsOwnedTorrc(path)
	require.NoError(t, err)
	assert.True(t, owned)
	st, err := os.Stat(path + OwnedSuffix)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// SAVECONF rewrites the torrc (dropping comments); the sidecar stays valid.
	require.NoError(t, os.WriteFile(path, []byte("# This file was generated by Tor\nSocksPort 0\n"), 0o600))
	owned, _ = IsOwnedTorrc(path)
	assert.True(t, owned)

	// A sidecar copied next to another torrc does not vouch for it.
	other := filepath.Join(dir, "other")
	b, _ := os.ReadFile(path + OwnedSuffix)
	require.NoError(t, os.WriteFile(other+OwnedSuffix, b, 0o600))
	owned, _ = IsOwnedTorrc(other)
	assert.False(t, owned)

	// A relative path or one through a symlinked directory is the same file.
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(dir, link))
	owned, _ = IsOwnedTorrc(filepath.Join(link, "torrc"))
	assert.True(t, owned)

	// A sidecar that is not a regular file does not count.
	dirPath := filepath.Join(dir, "d")
	require.NoError(t, os.Mkdir(dirPath+OwnedSuffix, 0o700))
	owned, _ = IsOwnedTorrc(dirPath)
	assert.False(t, owned)

	// A sidecar others may write does not count.
	require.NoError(t, os.Chmod(path+OwnedSuffix, 0o622))
	owned, _ = IsOwnedTorrc(path)
	assert.False(t, owned)
	require.NoError(t, os.Chmod(path+OwnedSuffix, 0o600))

	// MarkOwned works before tor creates the torrc.
	missing := filepath.Join(dir, "later")
	require.NoError(t, MarkOwned(missing))
	owned, _ = IsOwnedTorrc(missing)
	assert.True(t, owned)
	owned, _ = IsOwnedTorrc("")
	assert.False(t, owned)
}
