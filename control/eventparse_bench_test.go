package control_test

import (
	"strings"
	"testing"

	binecontrol "github.com/cretz/bine/control"
	"github.com/gotorcon/tor/control"
)

// BenchmarkEvParse parses the events of the make-bench table with this
// package and with bine, on one goroutine (no I/O).
func BenchmarkEvParse(b *testing.B) {
	evs := make([]*control.Event, len(eventLines))
	for i, l := range eventLines {
		t := l[4:]
		typ := t[:strings.IndexByte(t, ' ')]
		evs[i] = &control.Event{Type: typ, Lines: []control.Line{{Code: 650, Sep: ' ', Text: t}}}
	}
	b.Run("gotorcon", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := control.ParseEvent(evs[i%len(evs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bine", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ev := evs[i%len(evs)]
			binecontrol.ParseEvent(binecontrol.EventCode(ev.Type), ev.Text(), nil)
		}
	})
}
