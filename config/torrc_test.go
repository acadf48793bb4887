package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTorrcOrderAndSet(t *testing.T) {
	var c Torrc
	c.Add("SocksPort", "9050").Add("Log", "notice stdout").Add("socksport", "9051").Add("ControlPort", "auto")
	assert.Equal(t, []string{"9050", "9051"}, c.Values("SOCKSPORT"))
	v, ok := c.Get("socksPort")
	assert.True(t, ok)
	assert.Equal(t, "9051", v)

	c.Set("SocksPort", "1", "2", "3")
	assert.Equal(t, []Option{
		{"SocksPort", "1"}, {"SocksPort", "2"}, {"SocksPort", "3"},
		{"Log", "notice stdout"}, {"ControlPort", "auto"},
	}, c.Options())
	assert.Equal(t, []string{"SocksPort", "Log", "ControlPort"}, c.Keys())

	c.Delete("log")
	assert.False(t, c.Has("Log"))
	assert.Len(t, c.Options(), 4)

	c.Set("New", "x")
	assert.Equal(t, Option{"New", "x"}, c.Options()[4])

	clone := c.Clone()
	clone.Add("Extra", "y")
	assert.False(t, c.Has("Extra"))
	assert.Empty(t, (*Torrc)(nil).Clone().Options())
}

func TestTorrcMerge(t *testing.T) {
	var a, b Torrc
	a.Add("SocksPort", "auto").Add("DataDirectory", "/d")
	b.Add("socksport", "auto").Add("Log", "notice stdout").Add("Log", "info file /x")
	require.NoError(t, a.Merge(&b))
	assert.Equal(t, []string{"notice stdout", "info file /x"}, a.Values("Log"))
	assert.Equal(t, []string{"auto"}, a.Values("SocksPort"))

	var c Torrc
	c.Add("DataDirectory", "/other").Add("Nickname", "n")
	before := a.Options()
	err := a.Merge(&c)
	require.ErrorIs(t, err, ErrConflict)
	assert.Contains(t, err.Error(), "DataDirectory")
	assert.Equal(t, before, a.Options(), "a failed merge must leave the torrc unchanged")
	assert.NoError(t, a.Merge(nil))
}

func TestTorrcRejectsBadOptions(t *testing.T) {
	for _, o := range []Option{{"", "x"}, {"Bad Key", "x"}, {"Key\n", "x"}, {"Key", "a\x00b"}, {"K#", "x"}} {
		var c Torrc
		c.Add(o.Key, o.Value)
		_, err := c.MarshalText()
		assert.ErrorIs(t, err, ErrInvalidOption, "%q", o)
		assert.ErrorIs(t, c.Validate(), ErrInvalidOption)
		assert.ErrorIs(t, c.WriteFile(filepath.Join(t.TempDir(), "torrc")), ErrInvalidOption)
	}
}

// awkward are values whose bytes must survive torrc rendering exactly.
var awkward = []string{
	"plain",
	"with spaces inside",
	`a "q" b\c`,
	`"starts with quote`,
	"has # hash",
	"tab\there",
	"line1\nline2",
	"cr\rlf",
	"utf8 é ünïcode",
	" leading and trailing ",
	`C:\Users\tor\x`,
	`ends with backslash\`,
	"ctrl \x01\x7f",
	"",
}

func TestTorrcRenderParseRoundTrip(t *testing.T) {
	var c Torrc
	for _, v := range awkward {
		c.Add("ContactInfo", v)
	}
	text, err := c.MarshalText()
	require.NoError(t, err)
	back, err := ParseTorrc(text)
	require.NoError(t, err)
	assert.Equal(t, c.Options(), back.Options())
}

func TestParseTorrc(t *testing.T) {
	text := "# comment\n" +
		"  SocksPort 9050   # trailing comment\n" +
		"\n" +
		"Log notice \\\n" +
		"# comment inside a continuation\n" +
		"  stdout\n" +
		"ContactInfo \"x \\\"y\\\" \\101\\x42\" # c\r\n" +
		"Nickname\tnick\n" +
		"Empty\n"
	c, err := ParseTorrc([]byte(text))
	require.NoError(t, err)
	assert.Equal(t, []Option{
		{"SocksPort", "9050"},
		{"Log", "notice   stdout"},
		{"ContactInfo", `x "y" AB`},
		{"Nickname", "nick"},
		{"Empty", ""},
	}, c.Options())

	for _, bad := range []string{"K \"unterminated\n", "K \"x\" junk\n", "K \"bad \\d escape\"\n", "K \"\\777\"\n", "K \"\\xZZ\"\n"} {
		_, err := ParseTorrc([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

// TestTorrcAgainstTor checks the rendering against the real tor: tor reads
// the file we wrote and dumps the values it understood.
func TestTorrcAgainstTor(t *testing.T) {
	torPath, err := exec.LookPath("tor")
	require.NoError(t, err, "tor must be installed (make test installs it: apt-get install -y tor)")

	dir := t.TempDir()
	var c Torrc
	c.Add("DataDirectory", filepath.Join(dir, "data"))
	c.Add("DisableNetwork", "1")
	c.Add("SocksPort", "0")
	c.Add("GeoIPFile", "/dev/null").Add("GeoIPv6File", "/dev/null")
	for _, v := range awkward {
		if v == "" {
			continue // an empty ContactInfo is "unset" to tor
		}
		c.Add("ContactInfo", v)
	}
	torrc := filepath.Join(dir, "torrc")
	require.NoError(t, c.WriteFile(torrc))
	st, err := os.Stat(torrc)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	empty := filepath.Join(dir, "defaults")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	out, err := exec.Command(torPath, "-f", torrc, "--defaults-torrc", empty, "--ignore-missing-torrc",
		"--dump-config", "short", "--quiet").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("tor --dump-config: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)
	// ContactInfo is single-valued: tor keeps the last line.
	assert.Equal(t, awkward[len(awkward)-2], dumpedValue(t, out, "ContactInfo"))

	for _, v := range awkward {
		if v == "" {
			continue
		}
		c.Set("ContactInfo", v)
		require.NoError(t, c.WriteFile(torrc))
		out, err := exec.Command(torPath, "-f", torrc, "--defaults-torrc", empty, "--ignore-missing-torrc",
			"--dump-config", "short", "--quiet").Output()
		require.NoError(t, err, "value %q", v)
		assert.Equal(t, v, dumpedValue(t, out, "ContactInfo"), "tor read back a different value")
	}
}

// dumpedValue finds key in tor's --dump-config output and decodes its value
// the way tor encodes it there (and in GETCONF): a C string when it starts
// with a quote, otherwise the raw rest of the line. (tor writes a value with
// a trailing backslash raw, so the output is not always a valid torrc.)
func dumpedValue(t *testing.T, out []byte, key string) string {
	t.Helper()
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, key+" ")
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, `"`) {
			v, tail, err := unquoteCString(rest)
			require.NoError(t, err, "line %q", line)
			require.Empty(t, tail)
			return v
		}
		return rest
	}
	t.Fatalf("%s missing from tor's output:\n%s", key, out)
	return ""
}
