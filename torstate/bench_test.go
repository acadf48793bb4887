package torstate_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/torstate"
)

// syntheticConsensus returns n router status entries in the
// microdescriptor flavour a client's GETINFO ns/all returns, with the
// spread of flags and addresses of the public network.
func syntheticConsensus(n int) string {
	var b strings.Builder
	id := make([]byte, 20)
	for i := range n {
		copy(id, fmt.Appendf(nil, "%020d", i))
		fmt.Fprintf(&b, "r relay%d %s 2026-12-01 10:00:00 %d.%d.%d.%d 9001 0\n", i,
			base64.RawStdEncoding.EncodeToString(id), 1+i%223, (i/223)%256, (i/7)%256, 1+i%250)
		fmt.Fprintf(&b, "m %s\n", base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 32)))
		switch i % 4 {
		case 0:
			b.WriteString("s Exit Fast Running Stable V2Dir Valid\n")
		case 1:
			b.WriteString("s Fast Guard HSDir Running Stable V2Dir Valid\n")
		default:
			b.WriteString("s Fast Running Stable V2Dir Valid\n")
		}
		fmt.Fprintf(&b, "w Bandwidth=%d\n", 20+i*7%50000)
	}
	return b.String()
}

// benchTor is a fake tor for the benchmarks: it answers the State's
// snapshot with ns (the consensus) and, on "GETINFO bench/flood/N", sends N
// CIRC and STREAM events in tor 0.4.9's formats.
func benchTor(ns string) *controltest.Server {
	return controltest.NewServer(controltest.HandlerFunc(func(c *controltest.Conn) {
		for {
			cmd, err := c.ReadCommand()
			if err != nil {
				return
			}
			switch {
			case cmd.Line == "GETINFO events/names":
				c.Reply("250-events/names=CIRC CIRC_MINOR STREAM ORCONN GUARD NEWCONSENSUS NS", "250 OK")
			case cmd.Keyword == "SETEVENTS":
				c.Reply("250 OK")
			case strings.HasPrefix(cmd.Line, "GETINFO circuit-status"):
				c.Reply("250-circuit-status=", "250-stream-status=", "250-orconn-status=", "250-entry-guards=", "250 OK")
			case cmd.Line == "GETINFO ns/all":
				c.Reply(append(append([]string{"250+ns/all="}, controltest.DataBlock(ns)...), "250 OK")...)
			case cmd.Line == "GETINFO ip-to-country/ipv4-available":
				c.Reply("250-ip-to-country/ipv4-available=0", "250 OK")
			case strings.HasPrefix(cmd.Line, "GETINFO bench/flood/"):
				n, _ := strconv.Atoi(strings.TrimPrefix(cmd.Line, "GETINFO bench/flood/"))
				c.Reply("250-bench=", "250 OK")
				c.Write(floodEvents(n))
			default:
				c.Reply("510 Unrecognized command")
			}
		}
	}))
}

// floodEvents returns n events: the life of circuits (LAUNCHED, three
// EXTENDED, BUILT, CLOSED) and of streams on them (NEW, SENTCONNECT,
// SUCCEEDED, CLOSED).
func floodEvents(n int) []byte {
	hops := []string{
		"$BD167379DBCACE710540F38B31E021EF49F0F2C0~relay0",
		"$15908558F95E2C0269F3DBBFEDBA871DA6BF80BA~relay1",
		"$E3C1235A92AE995AA31469BFFB02539E42792457~relay3",
	}
	tail := " BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T11:12:20.916876"
	var b bytes.Buffer
	for i := 0; i < n; {
		id := strconv.Itoa(i/10 + 1)
		lines := []string{
			"650 CIRC " + id + " LAUNCHED" + tail,
			"650 CIRC " + id + " EXTENDED " + strings.Join(hops[:1], ",") + tail,
			"650 CIRC " + id + " EXTENDED " + strings.Join(hops[:2], ",") + tail,
			"650 CIRC " + id + " EXTENDED " + strings.Join(hops, ",") + tail,
			"650 CIRC " + id + " BUILT " + strings.Join(hops, ",") + tail,
			"650 STREAM " + id + " NEW 0 127.0.0.1:80 SOURCE_ADDR=127.0.0.1:50838 PURPOSE=USER SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\" CLIENT_PROTOCOL=SOCKS5",
			"650 STREAM " + id + " SENTCONNECT " + id + " 127.0.0.1:80 SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\" CLIENT_PROTOCOL=SOCKS5",
			"650 STREAM " + id + " SUCCEEDED " + id + " 127.0.0.1:80 SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\" CLIENT_PROTOCOL=SOCKS5",
			"650 STREAM " + id + " CLOSED " + id + " 127.0.0.1:80 REASON=DONE SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\" CLIENT_PROTOCOL=SOCKS5",
			"650 CIRC " + id + " CLOSED " + strings.Join(hops, ",") + tail + " REASON=FINISHED",
		}
		for _, l := range lines {
			if i == n {
				break
			}
			b.WriteString(l + "\r\n")
			i++
		}
	}
	return b.Bytes()
}

// BenchmarkEventsApplied measures how many CIRC and STREAM events per
// second the State applies, from the fake tor's socket through the
// control connection's reader and parser to the State's maps.
func BenchmarkEventsApplied(b *testing.B) {
	srv := benchTor(syntheticConsensus(100))
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Dial(ctx, srv.Network, srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	st, err := torstate.New(ctx, c, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	base := st.EventsApplied()
	// In chunks, so that the event buffer never overflows.
	const chunk = 20000
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		if _, err := c.Request(ctx, "GETINFO bench/flood/"+strconv.Itoa(n)); err != nil {
			b.Fatal(err)
		}
		done += n
		for st.EventsApplied()-base < uint64(done) {
			time.Sleep(100 * time.Microsecond) // poll without taking a core from the reader
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "events/s")
}

// BenchmarkConsensus8000 measures torstate.New on a tor whose consensus
// has 8,000 relays (the public network's size): GETINFO ns/all (about
// 1 MB), parsing, and building the relay table. retained-MB is the heap the
// State keeps for the relays.
func BenchmarkConsensus8000(b *testing.B) {
	ns := syntheticConsensus(8000)
	srv := benchTor(ns)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Dial(ctx, srv.Network, srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.SetBytes(int64(len(ns)))
	b.ReportAllocs()
	var retained float64
	for i := 0; i < b.N; i++ {
		var m0, m1 runtime.MemStats
		if i == 0 {
			runtime.GC()
			runtime.ReadMemStats(&m0)
		}
		st, err := torstate.New(ctx, c, nil)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(st.Relays()); n != 8000 {
			b.Fatalf("%d relays", n)
		}
		if i == 0 {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			retained = float64(m1.HeapAlloc-m0.HeapAlloc) / (1 << 20)
			b.StartTimer()
		}
		st.Close()
		runtime.KeepAlive(st)
	}
	b.ReportMetric(retained, "retained-MB")
}
