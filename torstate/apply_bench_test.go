package torstate

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
)

// BenchmarkApply measures the State's own cost per event (parse and apply,
// no socket): CIRC and STREAM events of circuits' and streams' lives.
func BenchmarkApply(b *testing.B) {
	s := &State{log: slog.New(slog.DiscardHandler)}
	s.init()
	hops := "$BD167379DBCACE710540F38B31E021EF49F0F2C0~relay0,$15908558F95E2C0269F3DBBFEDBA871DA6BF80BA~relay1,$E3C1235A92AE995AA31469BFFB02539E42792457~relay3"
	tail := " BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T11:12:20.916876"
	const circs = 1000
	var evs []*control.Event
	for i := range circs {
		id := strconv.Itoa(i + 1)
		for _, l := range []string{
			"CIRC " + id + " LAUNCHED" + tail,
			"CIRC " + id + " BUILT " + hops + tail,
			"STREAM " + id + " NEW 0 127.0.0.1:80 SOURCE_ADDR=127.0.0.1:50838 PURPOSE=USER SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\"",
			"STREAM " + id + " SUCCEEDED " + id + " 127.0.0.1:80 SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\"",
			"STREAM " + id + " CLOSED " + id + " 127.0.0.1:80 REASON=DONE SOCKS_USERNAME=\"u\" SOCKS_PASSWORD=\"p\"",
			"CIRC " + id + " CLOSED " + hops + tail + " REASON=FINISHED",
		} {
			typ, _, _ := strings.Cut(l, " ")
			evs = append(evs, &control.Event{Type: typ, Lines: []control.Line{{Code: 650, Sep: ' ', Text: l}}})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		s.apply(evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "events/s")
}
