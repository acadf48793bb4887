package control_test

// The comparison table printed by "make bench": a hand-written raw client,
// this package and github.com/cretz/bine/control v0.2.0, side by side in
// one run against one tor 0.4.9 (unix control socket, DisableNetwork 1,
// started here), clients measured round-robin in each of several rounds so
// that the noise of a shared machine hits them alike.
//
//	go test -run '^TestBenchTable$' -benchtable ./control
//
// Command benchmarks talk to the real tor. Event benchmarks replay the same
// bytes from a fake tor (a unix socket served by this test) to every
// client: tor itself cannot be made to send millions of events on demand.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	binecontrol "github.com/cretz/bine/control"

	"github.com/gotorcon/tor/control"
)

var benchTable = flag.Bool("benchtable", false, "print the comparison table of raw client, gotorcon and bine (make bench)")

const (
	tableRounds   = 5
	seqPerRound   = 3000  // sequential round trips per client per round
	pipePerRound  = 64000 // pipelined GETINFOs per client per round
	eventsPerRun  = 200000
	fanoutEvents  = 20000
	pipeGoroutine = 64
)

func TestBenchTable(t *testing.T) {
	if !*benchTable {
		t.Skip("run with -benchtable (make bench)")
	}
	tor := sharedTorFor(t)
	ctx := context.Background()
	gc := tor.Connect(t) // unix socket, cookie authentication
	cookie, err := os.ReadFile(tor.CookieFile)
	if err != nil {
		t.Fatal(err)
	}
	raw := newRawClient(t, tor.ControlSocket, cookie)
	bnc, err := net.Dial("unix", tor.ControlSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer bnc.Close()
	bc := binecontrol.NewConn(textproto.NewConn(bnc))
	if err := bc.Authenticate(""); err != nil {
		t.Fatal(err)
	}

	seq := map[string][]time.Duration{}
	pipe := map[string][]float64{}
	runSeq := func(name string, f func()) {
		for i := 0; i < 100; i++ { // warm up
			f()
		}
		for i := 0; i < seqPerRound; i++ {
			t0 := time.Now()
			f()
			seq[name] = append(seq[name], time.Since(t0))
		}
	}
	gcGetInfo := func() {
		if _, err := gc.GetInfo(ctx, "version"); err != nil {
			t.Fatal(err)
		}
	}
	bineGetInfo := func() {
		if _, err := bc.GetInfo("version"); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < tableRounds; round++ {
		t.Logf("commands, round %d", round+1)
		runSeq("raw", raw.getInfo)
		runSeq("gotorcon", gcGetInfo)
		runSeq("bine", bineGetInfo)
		pipe["raw"] = append(pipe["raw"], raw.pipelined(pipePerRound, pipeGoroutine))
		pipe["gotorcon"] = append(pipe["gotorcon"], gcPipelined(t, gc, pipePerRound, pipeGoroutine))
	}
	allocs := map[string][2]float64{
		"raw":      measureAllocs(raw.getInfo),
		"gotorcon": measureAllocs(gcGetInfo),
		"bine":     measureAllocs(bineGetInfo),
	}
	gcValue := measureAllocs(func() {
		if _, err := gc.GetInfoValue(ctx, "version"); err != nil {
			t.Fatal(err)
		}
	})
	// Events, replayed from a fake tor.
	wire := eventWire(eventsPerRun)
	fan := eventWire(fanoutEvents)
	ev := map[string][]float64{}
	for round := 0; round < tableRounds; round++ {
		t.Logf("events, round %d", round+1)
		ev["raw"] = append(ev["raw"], rawEvents(t, wire, eventsPerRun))
		ev["gotorcon"] = append(ev["gotorcon"], gcEvents(t, wire, eventsPerRun, 1, true))
		ev["gotorcon-noparse"] = append(ev["gotorcon-noparse"], gcEvents(t, wire, eventsPerRun, 1, false))
		ev["bine"] = append(ev["bine"], bineEvents(t, wire, eventsPerRun, 1))
		for _, n := range []int{10, 100} {
			k := fmt.Sprint(n)
			ev["gotorcon-fan"+k] = append(ev["gotorcon-fan"+k], float64(n)*gcEvents(t, fan, fanoutEvents, n, true))
			ev["bine-fan"+k] = append(ev["bine-fan"+k], float64(n)*bineEvents(t, fan, fanoutEvents, n))
		}
	}

	// Allocations per event, whole process (client, and the fake tor's
	// few), in one more run each.
	evAllocs := map[string][2]float64{
		"gotorcon": eventAllocs(eventsPerRun, func() { gcEvents(t, wire, eventsPerRun, 1, true) }),
		"bine":     eventAllocs(eventsPerRun, func() { bineEvents(t, wire, eventsPerRun, 1) }),
	}

	// The table.
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	minMed := func(name string) (float64, float64) {
		s := slices.Clone(seq[name])
		slices.Sort(s)
		return us(s[0]), us(s[len(s)/2])
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	rmin, rmed := minMed("raw")
	gmin, gmed := minMed("gotorcon")
	bmin, bmed := minMed("bine")
	var b strings.Builder
	fmt.Fprintf(&b, "\ncontrol hot path: %s, tor %s, GOMAXPROCS %d, %d rounds round-robin (medians of rounds for rates)\n\n",
		runtime.Version(), tableTorVersion(t, gc), runtime.GOMAXPROCS(0), tableRounds)
	fmt.Fprintf(&b, "| what | raw | gotorcon | bine | gotorcon/raw | gotorcon vs bine |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| sequential GETINFO, min µs | %.1f | %.1f | %.1f | %.2f× | %.2f× faster |\n", rmin, gmin, bmin, gmin/rmin, bmin/gmin)
	fmt.Fprintf(&b, "| sequential GETINFO, median µs | %.1f | %.1f | %.1f | %.2f× | %.2f× faster |\n", rmed, gmed, bmed, gmed/rmed, bmed/gmed)
	fmt.Fprintf(&b, "| allocs / bytes per GetInfo, one key | %.0f / %.0f B | %.0f / %.0f B | %.0f / %.0f B | | |\n",
		allocs["raw"][0], allocs["raw"][1], allocs["gotorcon"][0], allocs["gotorcon"][1], allocs["bine"][0], allocs["bine"][1])
	fmt.Fprintf(&b, "| allocs / bytes per GetInfoValue | | %.0f / %.0f B | | | |\n", gcValue[0], gcValue[1])
	pr, pg := med(pipe["raw"]), med(pipe["gotorcon"])
	fmt.Fprintf(&b, "| pipelined, %d goroutines, kops/s | %.0f (window %d) | %.0f | n/a (serializes; can deadlock) | %.2f× | |\n",
		pipeGoroutine, pr, pipeGoroutine, pg, pg/pr)
	er, eg, en, eb := med(ev["raw"]), med(ev["gotorcon"]), med(ev["gotorcon-noparse"]), med(ev["bine"])
	fmt.Fprintf(&b, "| events delivered + parsed, k/s | %.0f (line split only) | %.0f | %.0f | | %.2f× |\n", er, eg, eb, eg/eb)
	fmt.Fprintf(&b, "| events delivered only (*Event), k/s | | %.0f | | | |\n", en)
	fmt.Fprintf(&b, "| allocs / bytes per event delivered + parsed (whole process) | | %.1f / %.0f B | %.1f / %.0f B | | |\n",
		evAllocs["gotorcon"][0], evAllocs["gotorcon"][1], evAllocs["bine"][0], evAllocs["bine"][1])
	g10, g100 := med(ev["gotorcon-fan10"]), med(ev["gotorcon-fan100"])
	b10, b100 := med(ev["bine-fan10"]), med(ev["bine-fan100"])
	fmt.Fprintf(&b, "| fan-out to 10 / 100 subscribers (parsed), k deliveries/s | | %.0f / %.0f | %.0f / %.0f | | %.2f× / %.2f× |\n",
		g10, g100, b10, b100, g10/b10, g100/b100)
	fmt.Fprintf(&b, "\ntargets: sequential min ≤ 2× raw: %v; median ≤ 1.1× raw: %v; allocs ≤ 4 and bytes < bine: GetInfo %v, GetInfoValue %v; pipelined ≥ raw/2: %v; events+parse ≥ 3× bine: %v\n",
		gmin <= 2*rmin, gmed <= 1.1*rmed,
		allocs["gotorcon"][0] <= 4 && allocs["gotorcon"][1] < allocs["bine"][1],
		gcValue[0] <= 4 && gcValue[1] < allocs["bine"][1],
		pg >= pr/2, eg >= 3*eb)
	fmt.Fprintf(&b, "events: %d per run (a mix of CIRC, STREAM, ORCONN, BW, CIRC_BW, STATUS_CLIENT, HS_DESC lines as tor 0.4.9 writes them), the same bytes written by a fake tor on a unix socket to each client; fan-out: %d events to each subscriber\n", eventsPerRun, fanoutEvents)
	fmt.Print(b.String())
}

func tableTorVersion(t *testing.T, c *control.Conn) string {
	v, err := c.GetInfoValue(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// measureAllocs returns allocations and bytes per call of f (all
// goroutines: the reader's work for the call counts too).
func measureAllocs(f func()) [2]float64 {
	const n = 5000
	for i := 0; i < 100; i++ {
		f()
	}
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for i := 0; i < n; i++ {
		f()
	}
	runtime.ReadMemStats(&b)
	return [2]float64{float64(b.Mallocs-a.Mallocs) / n, float64(b.TotalAlloc-a.TotalAlloc) / n}
}

// rawClient is the baseline: a write and a read of the reply's lines, no
// parsing.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	br  *bufio.Reader
	cmd []byte
}

func newRawClient(t *testing.T, sock string, cookie []byte) *rawClient {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	br := bufio.NewReader(nc)
	fmt.Fprintf(nc, "AUTHENTICATE %s\r\n", hex.EncodeToString(cookie))
	if l, _ := br.ReadString('\n'); l != "250 OK\r\n" {
		t.Fatalf("raw auth: %q", l)
	}
	return &rawClient{t: t, nc: nc, br: br, cmd: []byte("GETINFO version\r\n")}
}

func (r *rawClient) readReply() {
	for {
		l, err := r.br.ReadSlice('\n')
		if err != nil {
			r.t.Fatal(err)
		}
		if len(l) > 3 && l[3] == ' ' {
			return
		}
	}
}

func (r *rawClient) getInfo() {
	if _, err := r.nc.Write(r.cmd); err != nil {
		r.t.Fatal(err)
	}
	r.readReply()
}

// pipelined keeps window commands in flight from one goroutine; kops/s.
func (r *rawClient) pipelined(n, window int) float64 {
	batch := bytes.Repeat(r.cmd, window)
	t0 := time.Now()
	for i := 0; i < n; i += window {
		if _, err := r.nc.Write(batch); err != nil {
			r.t.Fatal(err)
		}
		for j := 0; j < window; j++ {
			r.readReply()
		}
	}
	return float64(n) / time.Since(t0).Seconds() / 1e3
}

func gcPipelined(t *testing.T, c *control.Conn, n, g int) float64 {
	ctx := context.Background()
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n/g; j++ {
				if _, err := c.GetInfo(ctx, "version"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n/g*g) / time.Since(t0).Seconds() / 1e3
}

// eventLines are events as tor 0.4.9 writes them.
var eventLines = []string{
	"650 CIRC 1042 BUILT $9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2~relay1,$1F2E3D4C5B6A79881726354453627180A9B8C7D6~relay2,$0A1B2C3D4E5F60718293A4B5C6D7E8F901234567~exit3 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-22T06:05:03.131771",
	"650 STREAM 2211 SUCCEEDED 1042 93.184.216.34:443 SOURCE_ADDR=127.0.0.1:51334 PURPOSE=USER",
	"650 ORCONN $9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2~relay1 CONNECTED NCIRCS=3 ID=117",
	"650 BW 10240 20480",
	"650 CIRC_BW ID=1042 READ=498 WRITTEN=996 TIME=2026-11-22T06:05:04.000000 DELIVERED_READ=498 OVERHEAD_READ=0 DELIVERED_WRITTEN=996 OVERHEAD_WRITTEN=0",
	"650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=75 TAG=enough_dirinfo SUMMARY=\"Loaded enough directory info to build circuits\"",
	"650 CIRC 1043 LAUNCHED BUILD_FLAGS=NEED_CAPACITY,IS_INTERNAL PURPOSE=HS_SERVICE_INTRO HS_STATE=HSSI_CONNECTING TIME_CREATED=2026-11-22T06:05:05.000001",
	"650 HS_DESC UPLOADED kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd UNKNOWN $1F2E3D4C5B6A79881726354453627180A9B8C7D6~relay2",
}

var eventNames = []string{"CIRC", "STREAM", "ORCONN", "BW", "CIRC_BW", "STATUS_CLIENT", "HS_DESC"}

func eventWire(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.WriteString(eventLines[i%len(eventLines)])
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// eventServer is a fake tor on a unix socket: it answers every command
// with 250 (GETINFO events/names with the names above) and writes wire
// once after its answer to "GETINFO bench/start", so that every subscriber
// is in place before the first event.
func eventServer(t *testing.T, wire []byte) string {
	dir, err := os.MkdirTemp("", "evb")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		sent := false
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			switch {
			case strings.HasPrefix(l, "GETINFO events/names"):
				io.WriteString(nc, "250-events/names="+strings.Join(eventNames, " ")+"\r\n250 OK\r\n")
			case l == "GETINFO bench/start" && !sent:
				io.WriteString(nc, "250-bench/start=1\r\n250 OK\r\n")
				nc.Write(wire)
				sent = true
			default:
				io.WriteString(nc, "250 OK\r\n")
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done; os.RemoveAll(dir) })
	return sock
}

// settleHeap collects the garbage of the runs before (200,000 events of
// another client, or the 2,000,000 deliveries of a fan-out run) so that
// each measured run pays only for its own.
func settleHeap() { runtime.GC() }

// eventAllocs returns the allocations and bytes allocated per event by the
// whole process while f receives n events.
func eventAllocs(n int, f func()) [2]float64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return [2]float64{float64(m1.Mallocs-m0.Mallocs) / float64(n), float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n)}
}

func rawEvents(t *testing.T, wire []byte, n int) float64 {
	sock := eventServer(t, wire)
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 32<<10)
	settleHeap()
	t0 := time.Now()
	io.WriteString(nc, "GETINFO bench/start\r\n")
	got := -2 // the reply
	for got < n {
		if _, err := br.ReadSlice('\n'); err != nil {
			t.Fatal(err)
		}
		got++
	}
	return float64(n) / time.Since(t0).Seconds() / 1e3
}

// gcEvents subscribes subs subscriptions and returns events per second
// (per subscriber) until every subscriber has all n events.
func gcEvents(t *testing.T, wire []byte, n, subs int, parse bool) float64 {
	sock := eventServer(t, wire)
	ctx := context.Background()
	c, err := control.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ss []*control.Subscription
	buf := n // room for every event: nothing is dropped, both clients do all the work
	var wg sync.WaitGroup
	start := make(chan struct{})
	fail := make(chan error, subs)
	for i := 0; i < subs; i++ {
		s, err := c.SubscribeWith(ctx, control.SubscribeOptions{Buffer: buf}, eventNames...)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for got := 0; got < n; got++ {
				ev, ok := <-s.Events()
				if !ok {
					fail <- fmt.Errorf("closed after %d events (dropped %d)", got, s.Dropped())
					return
				}
				if parse {
					if _, err := ev.Parsed(); err != nil {
						fail <- err
						return
					}
				}
			}
		}()
	}
	settleHeap()
	t0 := time.Now()
	close(start)
	if _, err := c.Request(ctx, "GETINFO bench/start"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	el := time.Since(t0)
	select {
	case err := <-fail:
		t.Fatal(err)
	default:
	}
	return float64(n) / el.Seconds() / 1e3
}

func bineEvents(t *testing.T, wire []byte, n, subs int) float64 {
	sock := eventServer(t, wire)
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bc := binecontrol.NewConn(textproto.NewConn(nc))
	codes := make([]binecontrol.EventCode, len(eventNames))
	for i, e := range eventNames {
		codes[i] = binecontrol.EventCode(e)
	}
	buf := n
	var chans []chan binecontrol.Event
	for i := 0; i < subs; i++ {
		ch := make(chan binecontrol.Event, buf)
		chans = append(chans, ch)
		if err := bc.AddEventListener(ch, codes...); err != nil {
			t.Fatal(err)
		}
	}
	settleHeap()
	t0 := time.Now()
	if _, err := bc.GetInfo("bench/start"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go bc.HandleEvents(ctx)
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < n; got++ {
				<-ch // bine parses before it delivers
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	nc.Close() // ends HandleEvents
	return float64(n) / el.Seconds() / 1e3
}
