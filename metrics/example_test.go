package metrics_test

import (
	"fmt"
	"strings"

	"github.com/gotorcon/tor/metrics"
)

func ExampleParse() {
	// What tor's MetricsPort says about a service under a flood: requests
	// wait in the PoW queue, and tor asks clients for more effort.
	m, err := metrics.Parse(strings.NewReader(`# HELP tor_hs_pow_suggested_effort Suggested effort for requests with a proof of work client puzzle
# TYPE tor_hs_pow_suggested_effort gauge
tor_hs_pow_suggested_effort{onion="lqgz6j5bbrgoijl2bp6mmhlscac6nnbimbl3lzydxokkdxdhta77gjad"} 84
# HELP tor_hs_rdv_pow_pqueue_count Number of requests waiting in the proof of work priority queue
# TYPE tor_hs_rdv_pow_pqueue_count gauge
tor_hs_rdv_pow_pqueue_count{onion="lqgz6j5bbrgoijl2bp6mmhlscac6nnbimbl3lzydxokkdxdhta77gjad"} 30
`))
	if err != nil {
		panic(err)
	}
	svc := m.Onion("lqgz6j5bbrgoijl2bp6mmhlscac6nnbimbl3lzydxokkdxdhta77gjad.onion")
	fmt.Println(svc.PoWSuggestedEffort, svc.PoWQueued)
	// Output: 84 30
}
