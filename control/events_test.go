package control

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
)

// goFake is a fake tor that answers "GETINFO go" with answer and every
// other command with 250 OK, but GETINFO events/names with 552, so that any
// event name may be subscribed to.
func goFake(t *testing.T, answer func(s *controltest.Conn)) *Conn {
	return fake(t, func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch cmd.Line {
			case "GETINFO events/names":
				s.Reply(`552 Unrecognized key "events/names"`)
			case "GETINFO go":
				answer(s)
			default:
				s.Reply("250 OK")
			}
		}
	})
}

// The reader routes each event to exactly the subscriptions of its type,
// the same *Event to all of them, and stops routing to a closed one. The
// events have every size the reader allocates differently (with its text
// up to 128, 256 and 512 bytes, longer, and several lines).
func TestDispatchRoutesByType(t *testing.T) {
	long := func(n int) string { return "650 CIRC 1 BUILT PURPOSE=" + strings.Repeat("x", n) }
	events := []string{
		"650 BW 1 2",
		long(150),
		long(400),
		long(5000),
		"650 STREAM 1 NEW 0 a:1",
		"650+NS", "r a b c", "s Fast", ".", "650 OK",
	}
	c := goFake(t, func(s *controltest.Conn) { s.Reply(append(events, "250-go=1", "250 OK")...) })
	ctx := context.Background()
	a, err := c.Subscribe(ctx, "CIRC", "BW", "NS")
	require.NoError(t, err)
	b, err := c.Subscribe(ctx, "BW")
	require.NoError(t, err)
	d, err := c.Subscribe(ctx, "STREAM")
	require.NoError(t, err)
	_, err = c.GetInfoValue(ctx, "go") // the events come before the reply
	require.NoError(t, err)

	var got []string
	var bwA *Event
	for range 5 {
		ev := <-a.Events()
		if ev.Type == "BW" {
			bwA = ev
		}
		got = append(got, ev.String())
	}
	assert.Equal(t, []string{"650 BW 1 2", long(150), long(400), long(5000), "650+NS\nr a b c\ns Fast\n.\n650 OK"}, got)
	bwB := <-b.Events()
	assert.Same(t, bwA, bwB, "one *Event for every subscriber")
	st := <-d.Events()
	assert.Equal(t, "STREAM 1 NEW 0 a:1", st.Lines[0].Text)
	assert.Equal(t, "STREAM", st.Type)
	assert.Empty(t, a.Events(), "nothing else for a")
	assert.Empty(t, b.Events(), "nothing else for b")
	assert.Empty(t, d.Events(), "nothing else for d")

	require.NoError(t, a.Close())
	_, err = c.GetInfoValue(ctx, "go")
	require.NoError(t, err)
	_, open := <-a.Events()
	assert.False(t, open, "a closed: nothing routed to it")
	assert.Equal(t, "BW 1 2", (<-b.Events()).Lines[0].Text)
	assert.Equal(t, "STREAM", (<-d.Events()).Type)
	assert.Empty(t, b.Events())
	assert.Empty(t, d.Events())
}

// Parsed parses an event once, however many subscribers ask at once: they
// all get the same value, or for a malformed event no value and the same
// error; an event without a typed form is its own value.
func TestParsedOnceForEverySubscriber(t *testing.T) {
	var flag atomic.Bool
	var arena eventArena
	for _, c := range []struct {
		line string
		slot func(e *Event) any // as the reader sets it
	}{
		{"650 CIRC 1 BUILT PURPOSE=GENERAL", func(*Event) any { return nil }},
		{"650 CIRC 1 BUILT PURPOSE=GENERAL", func(*Event) any { return &flag }},
		{"650 CIRC 1 BUILT PURPOSE=GENERAL", func(e *Event) any { return arena.slot(e.Type) }},
		{"650 CIRC 1", func(e *Event) any { return arena.slot(e.Type) }},
		{"650 UNKNOWN_EVENT x=1", func(*Event) any { return &flag }},
	} {
		line := c.line
		e := ev(t, line)
		e.slot = c.slot(e)
		const n = 8
		vals := make([]any, n)
		errs := make([]error, n)
		start := make(chan struct{})
		done := make(chan int)
		for i := range n {
			go func() {
				<-start
				vals[i], errs[i] = e.Parsed()
				done <- i
			}()
		}
		close(start)
		for range n {
			<-done
		}
		for i := range n {
			assert.Equal(t, errs[0], errs[i], line)
			if vals[0] != nil {
				assert.Same(t, vals[0], vals[i], line)
			}
		}
		switch line {
		case "650 CIRC 1":
			assert.ErrorIs(t, errs[0], ErrMalformedEvent)
			assert.Nil(t, vals[0])
		case "650 UNKNOWN_EVENT x=1":
			require.NoError(t, errs[0])
			assert.Same(t, e, vals[0])
		default:
			require.NoError(t, errs[0])
			assert.Equal(t, "GENERAL", vals[0].(*CircEvent).Purpose)
		}
	}
}

// evScan, which the typed parsers use, splits a line exactly as ParseArgs
// (which Event.Args uses) does, and refuses the same lines.
func TestEvScanMatchesParseArgs(t *testing.T) {
	for _, s := range evScanSeeds {
		checkEvScan(t, s)
	}
}

func FuzzEvScanMatchesParseArgs(f *testing.F) {
	for _, s := range evScanSeeds {
		f.Add(s)
	}
	f.Fuzz(checkEvScan)
}

var evScanSeeds = []string{
	"", " ", "a", "a b", "  a  b  ", "K=v", "K=", "=v", "K==v", "K=a=b", "_k1=v", "k-1=v",
	"$AAAA=nick", "a:1 b.c", `K="q v"`, `"q v" x`, `K="a\"b" L=c`, `K="\101\n"`, `abc"def`,
	`K="x"y`, `K="unterminated`, `"a\400"`, "1042 BUILT $A~a,$B~b PURPOSE=GENERAL TIME_CREATED=2026-11-22T06:05:03.1",
	"K=v\tw", "\xff=1", "K=\xff",
}

func checkEvScan(t *testing.T, s string) {
	want, wantErr := ParseArgs(s)
	var got Args
	sc := evScan{s: s}
	for {
		k, v, ok := sc.next()
		if !ok {
			break
		}
		got = append(got, Arg{Key: k, Value: v})
	}
	if wantErr != nil {
		assert.Error(t, sc.err, s)
		return
	}
	require.NoError(t, sc.err, s)
	for i := range want {
		want[i].Quoted = false // evScan does not report it
	}
	if len(want) == 0 {
		want = nil
	}
	assert.Equal(t, want, got, s)
}

// One-line 650 events wholly in the read buffer take the reader's short
// way (dispatchBuffered), every other event the long way (readInto); both
// give the same Event. Here the events arrive in one write, with CRLF and a
// bare LF, a lone CR inside, no arguments, and a 6xx event that is not 650
// between them.
func TestBufferedEventsMatchReadEvents(t *testing.T) {
	wire := "650 BW 1 2\r\n650 BW 3 4\n650 BW 5\r6\r\n651 BW 7 8\r\n650 BW\r\n650-BW 9\r\n650 OK\r\n250-go=1\r\n250 OK\r\n"
	want := [][]Line{
		{{Code: 650, Sep: ' ', Text: "BW 1 2"}},
		{{Code: 650, Sep: ' ', Text: "BW 3 4"}},
		{{Code: 650, Sep: ' ', Text: "BW 5\r6"}},
		{{Code: 651, Sep: ' ', Text: "BW 7 8"}},
		{{Code: 650, Sep: ' ', Text: "BW"}},
		{{Code: 650, Sep: '-', Text: "BW 9"}, {Code: 650, Sep: ' ', Text: "OK"}},
	}
	c := goFake(t, func(s *controltest.Conn) { s.Write([]byte(wire)) })
	ctx := context.Background()
	sub, err := c.Subscribe(ctx, "BW")
	require.NoError(t, err)
	_, err = c.GetInfoValue(ctx, "go")
	require.NoError(t, err)
	for i, w := range want {
		ev := <-sub.Events()
		assert.Equal(t, w, ev.Lines, "event %d", i)
		assert.Equal(t, "BW", ev.Type)
	}
	assert.Empty(t, sub.Events())
}

// bufferedEventLine takes only a one-line 650 event whose line is wholly
// buffered and within the reply cap; anything else is left to readInto.
func TestBufferedEventLine(t *testing.T) {
	read := func(r io.Reader, max int) (string, int) {
		rr := newReplyReader(r, max)
		rr.br.Peek(1) // fill the buffer as the reader's last read did
		text, n := rr.bufferedEventLine()
		return string(text), n
	}
	text, n := read(strings.NewReader("650 BW 1 2\r\nrest"), 0)
	assert.Equal(t, "BW 1 2", text)
	assert.Equal(t, 12, n)
	text, n = read(strings.NewReader("650 BW 1\nrest"), 0)
	assert.Equal(t, "BW 1", text)
	assert.Equal(t, 9, n)
	for name, r := range map[string]io.Reader{
		"incomplete": strings.NewReader("650 BW 1 2"),
		"one byte":   iotest.OneByteReader(strings.NewReader("650 BW 1 2\r\n")),
		"mid line":   strings.NewReader("650-BW 1\r\n650 OK\r\n"),
		"data line":  strings.NewReader("650+NS\r\nr\r\n.\r\n650 OK\r\n"),
		"not 650":    strings.NewReader("651 BW 1\r\n"),
		"reply":      strings.NewReader("250 OK\r\n"),
		"short":      strings.NewReader("650\r\n"),
	} {
		_, n := read(r, 0)
		assert.Zero(t, n, name)
	}
	_, n = read(strings.NewReader("650 BW 1 2\r\n"), 12+lineCost-1)
	assert.Zero(t, n, "over the cap: readInto refuses it")
	_, n = read(strings.NewReader("650 BW 1 2\r\n"), 12+lineCost)
	assert.Equal(t, 12, n, "at the cap")
}

// The arena hands out Events and texts from shared blocks: nothing handed
// out is ever overwritten, whatever the sizes (empty, filling a block
// exactly, just over the limit for a block, several blocks' worth).
func TestEventArenaNeverOverwrites(t *testing.T) {
	var a eventArena
	var texts, want []string
	var evs []*Event
	sizes := []int{0, 1, 100, maxBlockText, maxBlockText + 1, 3000, textBlock - 1, 17}
	for i := 0; i < 40*eventBlock; i++ {
		n := sizes[i%len(sizes)]
		b := []byte(strings.Repeat(string(rune('a'+i%26)), n))
		texts = append(texts, a.copy(b))
		want = append(want, string(b))
		for j := range b {
			b[j] = '!' // the caller's buffer is reused
		}
		ev := a.event()
		ev.Type = want[i]
		evs = append(evs, ev)
	}
	for i := range texts {
		require.Equal(t, want[i], texts[i], "text %d", i)
		require.Equal(t, want[i], evs[i].Type, "event %d", i)
	}
	for i := 1; i < len(evs); i++ {
		require.NotSame(t, evs[i-1], evs[i])
	}
}

// Once a subscriber has parsed an event, the reader gives each event of a
// common type zeroed memory for its typed form; every event still gets its
// own value (more events than a slab holds, of several types), and an
// event whose Type was changed after delivery is parsed as its new type in
// memory of its own.
func TestParsedIntoReaderSlots(t *testing.T) {
	const n = 3*slotBlock + 5
	var wire strings.Builder
	for i := range n {
		fmt.Fprintf(&wire, "650 CIRC %d BUILT $%040X~r%d PURPOSE=GENERAL\r\n", i, i, i)
		fmt.Fprintf(&wire, "650 BW %d %d\r\n", i, 2*i)
		fmt.Fprintf(&wire, "650 STREAM %d NEW 0 h%d:80\r\n", i, i)
	}
	wire.WriteString("250-go=1\r\n250 OK\r\n")
	c := goFake(t, func(s *controltest.Conn) { s.Write([]byte(wire.String())) })
	ctx := context.Background()
	sub, err := c.SubscribeWith(ctx, SubscribeOptions{Buffer: 4 * n}, "CIRC", "BW", "STREAM")
	require.NoError(t, err)

	for round := range 2 { // before and after the first Parsed
		_, err = c.GetInfoValue(ctx, "go")
		require.NoError(t, err)
		var circs []*CircEvent
		for i := range n {
			ev := <-sub.Events()
			if round == 0 {
				assert.IsType(t, &atomic.Bool{}, ev.slot, "no slot before anyone parsed")
			} else {
				assert.IsType(t, &circAlloc{}, ev.slot)
			}
			v, err := ev.Parsed()
			require.NoError(t, err)
			ce := v.(*CircEvent)
			assert.Equal(t, fmt.Sprint(i), ce.ID)
			assert.Equal(t, []Relay{{Fingerprint: fmt.Sprintf("%040X", i), Nickname: fmt.Sprintf("r%d", i)}}, ce.Path)
			circs = append(circs, ce)

			v, err = (<-sub.Events()).Parsed()
			require.NoError(t, err)
			assert.Equal(t, &BWEvent{Read: uint64(i), Written: uint64(2 * i)}, v)

			ev = <-sub.Events()
			if round == 1 {
				ev.Type = "BW" // a subscriber may change its copy's fields
				_, err = ev.Parsed()
				assert.ErrorIs(t, err, ErrMalformedEvent)
				continue
			}
			v, err = ev.Parsed()
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("h%d:80", i), v.(*StreamEvent).Target)
		}
		for i, ce := range circs { // nothing parsed later overwrote an earlier value
			assert.Equal(t, fmt.Sprint(i), ce.ID)
		}
	}
}
