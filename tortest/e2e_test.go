package tortest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/syncbuf"
	"github.com/gotorcon/tor/launch"
	"github.com/gotorcon/tor/process"
	"github.com/gotorcon/tor/tortest"
)

// One network for the whole test binary (started by the first Shared).
func TestMain(m *testing.M) { tortest.Main(m, tortest.Options{}) }

// client is a tor joined to a network, started through package process.
type client struct {
	p    *process.Process
	c    *control.Conn
	logs syncbuf.Buffer // tor's output, printed when the test fails
}

// startClient starts a tor that joins n with its network disabled, so the
// caller sees its whole bootstrap.
func startClient(t *testing.T, ctx context.Context, n *tortest.Network) *client {
	t.Helper()
	torrc := n.ClientTorrc()
	torrc.Add("DisableNetwork", "1")
	torrc.Add("SocksPort", "127.0.0.1:auto ExtendedErrors")
	cl := &client{}
	p, err := process.Start(ctx, process.Options{Torrc: torrc, Output: &cl.logs})
	if err != nil {
		t.Fatalf("starting the client tor: %v", err)
	}
	cl.p = p
	cl.c = p.Control()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client tor output:\n%s", cl.logs.String())
		}
		cl.c.Close()
		if err := p.Close(); err != nil {
			t.Errorf("closing the client tor: %v", err)
		}
	})
	return cl
}

// bootstrap enables the client's network and waits for 100 %, checking
// that the reported progress only ever increases. It returns the steps.
func (cl *client) bootstrap(t *testing.T, ctx context.Context) []int {
	t.Helper()
	sub, err := cl.c.Subscribe(ctx, "STATUS_CLIENT")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	phase, err := cl.c.GetInfoValue(ctx, "status/bootstrap-phase")
	if err != nil {
		t.Fatal(err)
	}
	b, err := control.ParseBootstrap(phase)
	if err != nil {
		t.Fatal(err)
	}
	steps := []int{b.Progress}
	if err := cl.c.SetConf(ctx, control.ConfEntry{Key: "DisableNetwork", Value: "0"}); err != nil {
		t.Fatal(err)
	}
	for steps[len(steps)-1] < 100 {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("event stream ended at %v: %v", steps, cl.c.Err())
			}
			p, err := ev.Parsed()
			se, ok := p.(*control.StatusEvent)
			if !ok {
				t.Fatalf("bad STATUS_CLIENT event %q: %v", ev.Text(), err)
			}
			b, ok := se.Bootstrap()
			if !ok {
				continue
			}
			if b.Severity != "NOTICE" {
				t.Logf("bootstrap problem (tor retries): %s", ev.Text())
				continue
			}
			if last := steps[len(steps)-1]; b.Progress <= last {
				t.Errorf("bootstrap progress went from %d to %d (%s)", last, b.Progress, ev.Text())
			}
			steps = append(steps, b.Progress)
		case <-ctx.Done():
			t.Fatalf("bootstrap stuck after %v: %v", steps, ctx.Err())
		}
	}
	return steps
}

func (cl *client) socksAddr(t *testing.T, ctx context.Context) string {
	t.Helper()
	v, err := cl.c.GetInfoValue(ctx, "net/listeners/socks")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := strconv.Unquote(strings.Fields(v)[0])
	if err != nil {
		t.Fatalf("net/listeners/socks %q: %v", v, err)
	}
	return addr
}

func TestClientBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network")
	}
	t0 := time.Now()
	n := tortest.Shared(t)
	took, attempts := n.StartupTime()
	t.Logf("network ready in %v (%d attempts; this call %v)", took.Round(time.Millisecond), attempts, time.Since(t0).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t1 := time.Now()
	cl := startClient(t, ctx, n)
	t2 := time.Now()
	steps := cl.bootstrap(t, ctx)
	boot := time.Since(t2)
	t.Logf("client tor started in %v, bootstrapped in %v: %v", t2.Sub(t1).Round(time.Millisecond), boot.Round(time.Millisecond), steps)
	if boot > 2*time.Second { // usually ~1 s: show why (visible with -v)
		t.Logf("slow bootstrap; client tor output:\n%s", cl.logs.String())
	}
	if steps[0] != 0 {
		t.Errorf("progress started at %d, want 0 (network was disabled)", steps[0])
	}
	// The client knows every node from the consensus.
	ns, err := cl.c.GetInfoValue(ctx, "ns/all")
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range n.Nodes() {
		if !strings.Contains(ns, "\nr "+nd.Nickname+" ") && !strings.HasPrefix(ns, "r "+nd.Nickname+" ") {
			t.Errorf("client's consensus lacks %s:\n%s", nd.Nickname, ns)
		}
	}
}

// TestLaunchBootstrap joins the network through package launch, as
// examples and the library's users do.
func TestLaunchBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network")
	}
	n := tortest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var steps []int
	start := time.Now()
	tor, err := launch.Private(ctx, launch.Options{
		Network:  n.ClientTorrc(),
		Progress: func(b *control.Bootstrap) { steps = append(steps, b.Progress) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	t.Logf("launch.Private bootstrapped in %v: %v", time.Since(start).Round(time.Millisecond), steps)
	for i := 1; i < len(steps); i++ {
		if steps[i] <= steps[i-1] {
			t.Errorf("progress not increasing: %v", steps)
		}
	}
	if len(steps) == 0 || steps[len(steps)-1] != 100 {
		t.Errorf("progress %v, want … 100", steps)
	}
}

// TestOnionService publishes an onion service on a client of the network
// and fetches a page from it through the client's SOCKS port: the network
// is fit for onion services end to end.
func TestOnionService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private Tor network")
	}
	n := tortest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t0 := time.Now()
	cl := startClient(t, ctx, n)
	cl.bootstrap(t, ctx)
	tBoot := time.Since(t0)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	}))
	defer srv.Close()

	events, err := cl.c.Subscribe(ctx, "HS_DESC")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	tAdd := time.Now()
	rep, err := cl.c.AddOnion(ctx, &control.AddOnionRequest{
		Ports: []control.OnionPort{{VirtPort: 80, Target: srv.Listener.Addr().String()}},
		Flags: []string{control.FlagDiscardPK},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.c.DelOnion(context.Background(), rep.ServiceID)
	waitPublished(t, ctx, events, rep.ServiceID)
	tPub := time.Since(tAdd)

	host := rep.ServiceID + ".onion"
	body := fetch(t, ctx, cl.socksAddr(t, ctx), "http://"+host+"/")
	tFetch := time.Since(tAdd)
	if want := "hello from " + host; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	t.Logf("client bootstrap %v; ADD_ONION → all descriptors uploaded %v; ADD_ONION → page fetched %v",
		tBoot.Round(time.Millisecond), tPub.Round(time.Millisecond), tFetch.Round(time.Millisecond))
	logUsage(t, n, cl.p.Pid())
}

// waitPublished waits until every descriptor upload of the service has
// succeeded (tor uploads one per time period and HSDir: connecting after
// the first UPLOADED can get 0xF0 for the other one).
func waitPublished(t *testing.T, ctx context.Context, sub *control.Subscription, sid string) {
	t.Helper()
	upload, uploaded, failed := 0, 0, 0
	for upload == 0 || uploaded+failed < upload {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatal("HS_DESC stream ended")
			}
			p, err := ev.Parsed()
			e, ok := p.(*control.HSDescEvent)
			if !ok {
				t.Fatalf("bad HS_DESC event %q: %v", ev.Text(), err)
			}
			if e.Address != sid {
				continue
			}
			switch e.Action {
			case "UPLOAD":
				upload++
			case "UPLOADED":
				uploaded++
			case "FAILED":
				failed++
				t.Logf("descriptor upload failed: %s", ev.Text())
			}
		case <-ctx.Done():
			t.Fatalf("descriptors not uploaded (%d UPLOAD, %d UPLOADED, %d FAILED): %v", upload, uploaded, failed, ctx.Err())
		}
	}
	if uploaded == 0 {
		t.Fatalf("every descriptor upload failed (%d)", failed)
	}
}

// socksReply extracts the SOCKS5 reply code from an x/net/proxy error.
var socksReply = regexp.MustCompile(`unknown code: (\d+)|(general SOCKS server failure)`)

// retryable reports whether a SOCKS failure is one an onion service that
// was just published can cause: 0x01 (general failure, e.g. intro circuits
// rotating) or 0xF0–0xF7 (tor's onion-service errors: descriptor not found
// yet, introduction failed, ...).
func retryable(err error) (string, bool) {
	m := socksReply.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	if m[2] != "" {
		return "0x01", true
	}
	code, _ := strconv.Atoi(m[1])
	return fmt.Sprintf("0x%02X", code), code >= 0xF0 && code <= 0xF7
}

const maxFetchAttempts = 8

// fetch GETs url through the SOCKS5 proxy at socksAddr and returns the body,
// retrying a bounded number of times on the failures retryable accepts.
func fetch(t *testing.T, ctx context.Context, socksAddr, url string) string {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", socksAddr, nil, &net.Dialer{})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       d.(proxy.ContextDialer).DialContext,
		DisableKeepAlives: true,
	}}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		req, _ := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if rerr != nil {
				t.Fatalf("reading %s: %v", url, rerr)
			}
			return string(b)
		}
		cancel()
		code, ok := retryable(err)
		if !ok || attempt == maxFetchAttempts || ctx.Err() != nil {
			t.Fatalf("GET %s (attempt %d): %v", url, attempt, err)
		}
		t.Logf("GET %s: SOCKS reply %s, retrying (attempt %d): %v", url, code, attempt, err)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// logUsage logs the CPU time and resident memory of the network's and the
// client's tor processes (Linux /proc; skipped elsewhere).
func logUsage(t *testing.T, n *tortest.Network, extra ...int) {
	pids := extra
	for _, nd := range n.Nodes() {
		pids = append(pids, nd.Pid)
	}
	var cpu time.Duration
	var rss int64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		cpu += time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				rss += kb
			}
		}
	}
	t.Logf("%d tor processes: %v CPU, %d MB RSS", len(pids), cpu, rss/1024)
}
