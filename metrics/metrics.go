// Package metrics reads tor's MetricsPort: the Prometheus text format
// that tor 0.4.7+ serves over HTTP, as numbers in Go. Onion gives the
// metrics of one onion service (proof-of-work effort and queue,
// introductions, rendezvous circuits), Metrics.Samples and Metrics.Sum any
// other.
//
// Tor opens a MetricsPort only when asked in its configuration, and serves
// it without authentication: keep it on loopback. Torrc returns the two
// options for a launched tor:
//
//	rc, err := metrics.Torrc("") // a free port on 127.0.0.1
//	t, err := launch.Private(ctx, launch.Options{Torrc: rc})
//	addr, err := metrics.Addr(ctx, t.Control())
//	m, err := metrics.Fetch(ctx, addr)
//	svc := m.Onion(listener.ServiceID())
//
// The text is parsed here, strictly, rather than with
// github.com/prometheus/common/expfmt, which would bring the Prometheus
// client model, protobuf and more into every program that embeds tor for
// the sake of one small text format.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// ErrNotLoopback is matched when an address given to Torrc or Fetch is not
// on the loopback interface: tor's MetricsPort has no authentication and
// no encryption.
var ErrNotLoopback = errors.New("metrics: the MetricsPort address must be on loopback")

// ErrNoMetricsPort is matched by Addr when tor has no MetricsPort open.
var ErrNoMetricsPort = errors.New("metrics: tor has no MetricsPort")

// maxBody bounds the size of a scrape (tor's is about 40 KB plus 5 KB per
// onion service).
const maxBody = 32 << 20

// Torrc returns the options that open tor's MetricsPort on addr
// ("127.0.0.1:PORT" or "[::1]:PORT") and let only that loopback address
// read it (MetricsPort, MetricsPortPolicy). With addr empty it picks a
// free port on 127.0.0.1. Tor takes no "auto" port for MetricsPort (tor
// 0.4.9.11 refuses to start), so the port is chosen here: another program
// could take it before tor starts, which makes tor fail to start.
func Torrc(addr string) (*config.Torrc, error) {
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("metrics: finding a free port: %w", err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: MetricsPort address %q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("%w: %s", ErrNotLoopback, addr)
	}
	ip := ap.Addr().String()
	if ap.Addr().Is6() {
		ip = "[" + ip + "]"
	}
	return new(config.Torrc).Add("MetricsPort", addr).Add("MetricsPortPolicy", "accept "+ip), nil
}

// Addr returns the address of tor's first MetricsPort listener (GETINFO
// net/listeners/metrics), or an error matching ErrNoMetricsPort. Tor
// opens no listener while its network is disabled.
func Addr(ctx context.Context, conn *control.Conn) (string, error) {
	v, err := conn.GetInfoValue(ctx, "net/listeners/metrics")
	if err != nil {
		return "", fmt.Errorf("metrics: GETINFO net/listeners/metrics: %w", err)
	}
	addrs, err := control.SplitQuoted(v)
	if err != nil {
		return "", fmt.Errorf("metrics: GETINFO net/listeners/metrics %q: %w", v, err)
	}
	if len(addrs) == 0 {
		return "", ErrNoMetricsPort
	}
	return addrs[0], nil
}

// Fetch reads and parses http://addr/metrics. addr must be a loopback
// address (see ErrNotLoopback).
func Fetch(ctx context.Context, addr string) (*Metrics, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %s", ErrNotLoopback, addr)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// No proxy from the environment, no keep-alive left behind.
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: GET /metrics: %s", resp.Status)
	}
	body := io.LimitReader(resp.Body, maxBody+1)
	cr := &countReader{r: body}
	m, err := Parse(cr)
	if err != nil {
		return nil, err
	}
	if cr.n > maxBody {
		return nil, fmt.Errorf("metrics: more than %d bytes", maxBody)
	}
	return m, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Onion is what tor's metrics say about one onion service it runs (the
// tor_hs_* metrics with the label onion="<ServiceID>"). Counters count
// since tor started, or since the service was added.
type Onion struct {
	// ServiceID is the onion address without ".onion".
	ServiceID string
	// Found reports whether tor had any metric for the service.
	Found bool

	// PoWSuggestedEffort is the effort the service asks of clients in its
	// descriptor (tor_hs_pow_suggested_effort): 0 while it is not under
	// attack, or when PoW is off.
	PoWSuggestedEffort float64
	// PoWQueued is the number of introduction requests waiting in the PoW
	// priority queue (tor_hs_rdv_pow_pqueue_count). Only a service with
	// PoW on queues requests: tor 0.4.9 exports both PoW gauges for every
	// service, at 0 when PoW is off.
	PoWQueued float64

	// Introductions is the number of introduction requests received
	// (tor_hs_intro_num_total).
	Introductions float64
	// RejectedIntros is the number of introduction requests rejected, all
	// reasons together (tor_hs_intro_rejected_intro_req_count), and
	// RejectedIntrosByReason per reason (bad_auth_key,
	// invalid_introduce2, subcredential, replay).
	RejectedIntros         float64
	RejectedIntrosByReason map[string]float64
	// IntroCircuits is the number of established introduction circuits
	// (tor_hs_intro_established_count).
	IntroCircuits float64

	// Rendezvous is the number of rendezvous circuits launched
	// (tor_hs_rdv_num_total), RendezvousOpen the number established
	// (tor_hs_rdv_established_count), RendezvousErrors the failures, all
	// reasons together (tor_hs_rdv_error_count).
	Rendezvous, RendezvousOpen, RendezvousErrors float64
}

// Onion returns the metrics of the onion service serviceID (with or
// without ".onion").
func (m *Metrics) Onion(serviceID string) Onion {
	id := strings.TrimSuffix(serviceID, ".onion")
	o := Onion{ServiceID: id, RejectedIntrosByReason: map[string]float64{}}
	get := func(name string) float64 {
		v, ok := m.Sum(name, "onion", id)
		o.Found = o.Found || ok
		return v
	}
	o.PoWSuggestedEffort = get("tor_hs_pow_suggested_effort")
	o.PoWQueued = get("tor_hs_rdv_pow_pqueue_count")
	o.Introductions = get("tor_hs_intro_num_total")
	o.RejectedIntros = get("tor_hs_intro_rejected_intro_req_count")
	for _, s := range m.Samples("tor_hs_intro_rejected_intro_req_count", "onion", id) {
		o.RejectedIntrosByReason[s.Labels["reason"]] += s.Value
	}
	o.IntroCircuits = get("tor_hs_intro_established_count")
	o.Rendezvous = get("tor_hs_rdv_num_total")
	o.RendezvousOpen = get("tor_hs_rdv_established_count")
	o.RendezvousErrors = get("tor_hs_rdv_error_count")
	return o
}
