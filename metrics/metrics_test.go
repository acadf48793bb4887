package metrics

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scrape excerpt was captured from tor 0.4.9.11 on a tortest network:
// pqmrc… is an on-disk service with PoW on that served two connections on
// one rendezvous circuit, c72v… an ephemeral one without PoW.
const (
	powSvc   = "pqmrc255poisz5fv5d2ebhsw7nkzn5zr5b3mqqzccnal7kxrh5lnokyd"
	plainSvc = "c72vhpcrllrbufiml75ijbjwishj2bt5ylq6avth3titmajy7wq2uhid"
)

func loadScrape(t *testing.T) *Metrics {
	f, err := os.Open("../testdata/metrics/tor-0.4.9.11.txt")
	require.NoError(t, err)
	defer f.Close()
	m, err := Parse(f)
	require.NoError(t, err)
	return m
}

func TestParseTorScrape(t *testing.T) {
	m := loadScrape(t)
	o := m.Onion(powSvc + ".onion")
	assert.Equal(t, Onion{
		ServiceID: powSvc, Found: true,
		Introductions: 1, IntroCircuits: 6,
		Rendezvous: 1, RendezvousOpen: 1,
		RejectedIntrosByReason: map[string]float64{"bad_auth_key": 0, "invalid_introduce2": 0, "subcredential": 0, "replay": 0},
	}, o)
	assert.True(t, m.Onion(plainSvc).Found)
	assert.False(t, m.Onion("aaaa").Found)

	v, ok := m.Sum("tor_hs_app_read_bytes_total", "onion", powSvc)
	assert.True(t, ok)
	assert.Equal(t, 10.0, v, "ports 80 and 81")
	v, _ = m.Sum("tor_hs_app_read_bytes_total", "onion", powSvc, "port", "81")
	assert.Equal(t, 10.0, v)
	_, ok = m.Sum("tor_hs_app_read_bytes_total", "onion")
	assert.False(t, ok, "an odd label list matches nothing")

	// Histogram samples belong to their family.
	var hist *Family
	for _, f := range m.Families {
		if f.Name == "tor_hs_rend_circ_build_time" && len(f.Samples) > 0 && f.Samples[0].Labels["onion"] == powSvc {
			hist = f
		}
	}
	require.NotNil(t, hist)
	assert.Equal(t, "histogram", hist.Type)
	assert.Equal(t, "The rendezvous circuit build time in milliseconds", hist.Help)
	assert.Len(t, hist.Samples, 8)
	assert.Equal(t, "+Inf", hist.Samples[5].Labels["le"])
	bug, _ := m.Sum("tor_bug_reached_count")
	assert.Equal(t, 0.0, bug)
}

func TestParseFormat(t *testing.T) {
	m, err := Parse(strings.NewReader(`# a comment
# HELP x_total Help with \\ and \n escapes
# TYPE x_total counter
x_total{a="q\"uote",b="back\\slash\nline",} 1.5e3 1700000000000
x_total { a = "2" } +Inf

y NaN
y -Inf
`))
	require.NoError(t, err)
	require.Len(t, m.Families, 2)
	x := m.Families[0]
	assert.Equal(t, "Help with \\ and \n escapes", x.Help)
	assert.Equal(t, map[string]string{"a": `q"uote`, "b": "back\\slash\nline"}, x.Samples[0].Labels)
	assert.Equal(t, 1500.0, x.Samples[0].Value)
	assert.True(t, math.IsInf(x.Samples[1].Value, 1))
	assert.Equal(t, "untyped", m.Families[1].Type)
	assert.True(t, math.IsNaN(m.Families[1].Samples[0].Value))

	for _, bad := range []string{
		"x",
		"x 1 2 3",
		"x one",
		"x 0x10",
		"x inf",
		"x 1_000",
		"1x 1",
		`x{a=1} 1`,
		`x{a="1" 1`,
		`x{a="1",a="2"} 1`,
		`x{a:b="1"} 1`,
		`x{a="\q"} 1`,
		`x{a="1"}} 1`,
		`x{="1"} 1`,
		"x 1 notatime",
		"# TYPE x counter gauge",
		"# TYPE x vector",
		"x 1\n# TYPE x counter",
		"# HELP 0bad help",
		"x " + strings.Repeat("1", maxLine),
	} {
		_, err := Parse(strings.NewReader(bad))
		assert.ErrorIs(t, err, ErrFormat, "%q", bad)
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("../testdata/metrics/tor-0.4.9.11.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b[:600]))
	f.Add(`x{a="b"} 1`)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, fam := range m.Families {
			if !validName(fam.Name) {
				t.Fatalf("family name %q", fam.Name)
			}
		}
	})
}

func TestTorrc(t *testing.T) {
	rc, err := Torrc("127.0.0.1:9035")
	require.NoError(t, err)
	assert.Equal(t, "MetricsPort 127.0.0.1:9035\nMetricsPortPolicy accept 127.0.0.1\n", rc.String())
	rc, err = Torrc("[::1]:9035")
	require.NoError(t, err)
	assert.Equal(t, []string{"accept [::1]"}, rc.Values("MetricsPortPolicy"))
	rc, err = Torrc("")
	require.NoError(t, err)
	v, _ := rc.Get("MetricsPort")
	assert.True(t, strings.HasPrefix(v, "127.0.0.1:"), v)
	for _, bad := range []string{"0.0.0.0:9035", "192.0.2.1:9035", "localhost:9035", "127.0.0.1:auto", "127.0.0.1"} {
		_, err := Torrc(bad)
		assert.Error(t, err, bad)
	}
	_, err = Torrc("0.0.0.0:9035")
	assert.ErrorIs(t, err, ErrNotLoopback)
}

func TestFetch(t *testing.T) {
	body, err := os.ReadFile("../testdata/metrics/tor-0.4.9.11.txt")
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := srv.Listener.Addr().String()
	m, err := Fetch(ctx, addr)
	require.NoError(t, err)
	assert.Equal(t, 6.0, m.Onion(powSvc).IntroCircuits)

	_, err = Fetch(ctx, "192.0.2.1:9035")
	assert.ErrorIs(t, err, ErrNotLoopback, "nothing is sent off the machine")
	_, err = Fetch(ctx, "example.com:80")
	assert.ErrorIs(t, err, ErrNotLoopback)

	// A closed port, a server that is not a MetricsPort, a cancelled ctx.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	_, err = Fetch(ctx, closed)
	assert.Error(t, err)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") }))
	defer bad.Close()
	_, err = Fetch(ctx, bad.Listener.Addr().String())
	assert.ErrorIs(t, err, ErrFormat)
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_, err = Fetch(cctx, addr)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestAddr(t *testing.T) {
	replies := []string{`250-net/listeners/metrics="127.0.0.1:9035"`, "250-net/listeners/metrics="}
	i := 0
	srv := controltest.NewServer(controltest.HandlerFunc(func(c *controltest.Conn) {
		for {
			cmd, err := c.ReadCommand()
			if err != nil {
				return
			}
			if cmd.Line == "GETINFO net/listeners/metrics" && i < len(replies) {
				c.Reply(replies[i], "250 OK")
				i++
				continue
			}
			c.Reply("250 OK")
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := control.Dial(ctx, srv.Network, srv.Addr)
	require.NoError(t, err)
	defer conn.Close()
	a, err := Addr(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9035", a)
	_, err = Addr(ctx, conn)
	assert.ErrorIs(t, err, ErrNoMetricsPort, "tor with its network disabled")
}
