package control

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
)

func readAll(t *testing.T, wire string, max int) ([]*Reply, error) {
	t.Helper()
	rr := newReplyReader(strings.NewReader(wire), max)
	var out []*Reply
	for {
		r, err := rr.ReadReply()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, r)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name string
		wire string
		want []*Reply
	}{
		{"single", "250 OK\r\n", []*Reply{{Lines: []Line{{250, ' ', "OK", ""}}}}},
		{"mid lines", "250-version=0.4.9.11\r\n250 OK\r\n", []*Reply{{Lines: []Line{{250, '-', "version=0.4.9.11", ""}, {250, ' ', "OK", ""}}}}},
		{"data then more lines", "250+info/names=\r\na\r\nb\r\n.\r\n250-x=y\r\n250 OK\r\n",
			[]*Reply{{Lines: []Line{{250, '+', "info/names=", "a\nb"}, {250, '-', "x=y", ""}, {250, ' ', "OK", ""}}}}},
		{"two data blocks", "250+a=\r\n1\r\n.\r\n250+b=\r\n2\r\n3\r\n.\r\n250 OK\r\n",
			[]*Reply{{Lines: []Line{{250, '+', "a=", "1"}, {250, '+', "b=", "2\n3"}, {250, ' ', "OK", ""}}}}},
		{"dot unstuffing", "250+k=\r\n..leading dot\r\n...\r\n.x\r\nplain\r\n.\r\n250 OK\r\n",
			[]*Reply{{Lines: []Line{{250, '+', "k=", ".leading dot\n..\nx\nplain"}, {250, ' ', "OK", ""}}}}},
		{"empty data as one empty line", "650+HS_DESC_CONTENT a b c\r\n\r\n.\r\n650 OK\r\n",
			[]*Reply{{Lines: []Line{{650, '+', "HS_DESC_CONTENT a b c", ""}, {650, ' ', "OK", ""}}}}},
		{"empty data, no lines", "250+k=\r\n.\r\n250 OK\r\n", []*Reply{{Lines: []Line{{250, '+', "k=", ""}, {250, ' ', "OK", ""}}}}},
		{"empty lines inside data", "250+k=\r\na\r\n\r\n\r\nb\r\n\r\n.\r\n250 OK\r\n",
			[]*Reply{{Lines: []Line{{250, '+', "k=", "a\n\n\nb\n"}, {250, ' ', "OK", ""}}}}},
		{"lone CR is data", "250 a\rb\r\r\n", []*Reply{{Lines: []Line{{250, ' ', "a\rb\r", ""}}}}},
		{"bare LF tolerated", "250-a\n250 OK\n", []*Reply{{Lines: []Line{{250, '-', "a", ""}, {250, ' ', "OK", ""}}}}},
		{"8-bit bytes", "250 \xff\x00\xc3\xa9\r\n", []*Reply{{Lines: []Line{{250, ' ', "\xff\x00\xc3\xa9", ""}}}}},
		{"mixed codes", "512-syntax error: invalid address '@@@'\r\n250 127.244.230.131=bogus1.google.com\r\n",
			[]*Reply{{Lines: []Line{{512, '-', "syntax error: invalid address '@@@'", ""}, {250, ' ', "127.244.230.131=bogus1.google.com", ""}}}}},
		{"empty text", "250 \r\n", []*Reply{{Lines: []Line{{250, ' ', "", ""}}}}},
		{"several replies", "250 OK\r\n650 BW 1 2\r\n552 no\r\n",
			[]*Reply{{Lines: []Line{{250, ' ', "OK", ""}}}, {Lines: []Line{{650, ' ', "BW 1 2", ""}}}, {Lines: []Line{{552, ' ', "no", ""}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.wire, 0)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadReplyErrors(t *testing.T) {
	tests := []struct {
		name, wire string
		is         error
	}{
		{"short line", "25\r\n", ErrProtocol},
		{"no divider", "250\r\n", ErrProtocol},
		{"letters", "ABC OK\r\n", ErrProtocol},
		{"bad divider", "250*OK\r\n", ErrProtocol},
		{"HTTP", "HTTP/1.0 501 Tor ControlPort is not an HTTP proxy\r\n", ErrProtocol},
		{"eof inside reply", "250-a\r\n", io.ErrUnexpectedEOF},
		{"eof inside data", "250+a=\r\nxx\r\n", io.ErrUnexpectedEOF},
		{"eof inside line", "250 OK", io.ErrUnexpectedEOF},
		{"eof inside data line", "250+a=\r\nxx", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.wire, 0)
			assert.ErrorIs(t, err, tt.is)
		})
	}
}

func TestReadReplyLongLinesAndCap(t *testing.T) {
	// A line far longer than the bufio buffer.
	long := strings.Repeat("x", 200<<10)
	got, err := readAll(t, "250-k="+long+"\r\n250 OK\r\n", 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "k="+long, got[0].Lines[0].Text)

	// A data block of many lines.
	var b strings.Builder
	b.WriteString("250+ns/all=\r\n")
	for i := 0; i < 50000; i++ {
		b.WriteString("r relay 0123456789\r\n")
	}
	b.WriteString(".\r\n250 OK\r\n")
	got, err = readAll(t, b.String(), 0)
	require.NoError(t, err)
	assert.Equal(t, 50000, strings.Count(got[0].Lines[0].Data, "\n")+1)

	// The cap applies to the whole reply, long lines and data included.
	_, err = readAll(t, "250-k="+long+"\r\n250 OK\r\n", 100<<10)
	assert.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "larger than")
	_, err = readAll(t, b.String(), 100<<10)
	assert.ErrorIs(t, err, ErrProtocol)
	// Each reply is measured on its own.
	small := strings.Repeat("250 OK\r\n", 1000)
	got, err = readAll(t, small, 8+lineCost) // one line: its bytes and lineCost
	require.NoError(t, err)
	assert.Len(t, got, 1000)
}

func TestReplyMethods(t *testing.T) {
	var nilReply *Reply
	assert.Equal(t, 0, nilReply.Code())
	assert.Equal(t, "", nilReply.Text())
	r := &Reply{Lines: []Line{{250, '+', "k=", "a\nb"}, {250, '-', "x=y", ""}, {250, ' ', "OK", ""}}}
	assert.True(t, r.OK())
	assert.Equal(t, "OK", r.Text())
	assert.Equal(t, "250+k=\na\nb\n.\n250-x=y\n250 OK", r.String())
	assert.True(t, r.Lines[0].HasData())
	assert.False(t, (&Reply{Lines: []Line{{451, ' ', "busy", ""}}}).OK())
}

func TestAppendCommand(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		line string
		data *string
		want string
	}{
		{"GETINFO version", nil, "GETINFO version\r\n"},
		{"+LOADCONF", s(""), "+LOADCONF\r\n.\r\n"},
		{"+LOADCONF", s("a\nb\n"), "+LOADCONF\r\na\r\nb\r\n.\r\n"},
		{"+LOADCONF", s("a\r\nb"), "+LOADCONF\r\na\r\nb\r\n.\r\n"},
		{"+LOADCONF", s(".\n..x\n.ContactInfo y"), "+LOADCONF\r\n..\r\n...x\r\n..ContactInfo y\r\n.\r\n"},
		{"+LOADCONF", s("\n"), "+LOADCONF\r\n\r\n.\r\n"},
		{"+LOADCONF", s("a\n\nb"), "+LOADCONF\r\na\r\n\r\nb\r\n.\r\n"},
	}
	for _, tt := range tests {
		got := string(appendCommand(nil, tt.line, tt.data))
		assert.Equal(t, tt.want, got)
		if tt.data != nil {
			// What a reader decodes is what was sent (modulo a trailing newline).
			rr := newReplyReader(strings.NewReader("250+x\r\n"+strings.SplitN(got, "\r\n", 2)[1]+"250 OK\r\n"), 0)
			rep, err := rr.ReadReply()
			require.NoError(t, err)
			want := strings.TrimSuffix(strings.ReplaceAll(*tt.data, "\r\n", "\n"), "\n")
			assert.Equal(t, want, rep.Lines[0].Data, "%q", *tt.data)
		}
	}
}

func TestErrorType(t *testing.T) {
	e := &Error{Command: "GETCONF", Code: 552, Text: `Unrecognized configuration key "b"`,
		Lines: []Line{{552, '-', `Unrecognized configuration key "a"`, ""}, {552, ' ', `Unrecognized configuration key "b"`, ""}}}
	assert.ErrorIs(t, e, ErrUnrecognizedEntity)
	assert.NotErrorIs(t, e, ErrInternal)
	assert.Equal(t, `control: GETCONF: 552 Unrecognized configuration key "b"; 552 Unrecognized configuration key "a"`, e.Error())
	for code, s := range sentinels {
		assert.ErrorIs(t, &Error{Code: code}, s)
		assert.Contains(t, s.Error(), strconv.Itoa(code))
	}
	assert.False(t, errors.Is(&Error{Code: 599}, ErrInternal))
	assert.Equal(t, "control: 599 x", (&Error{Code: 599, Text: "x"}).Error())

	ce := &ClosedError{Cause: io.EOF}
	assert.ErrorIs(t, ce, io.EOF)
	assert.Equal(t, "control: connection closed: EOF", ce.Error())
	assert.Equal(t, "control: connection closed", (&ClosedError{}).Error())
}

func BenchmarkReadReply(b *testing.B) {
	cases := map[string]string{
		"getinfo": "250-version=0.4.9.11\r\n250 OK\r\n",
		"event":   "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY=\"Handshaking with a relay\"\r\n",
		"data":    "250+config-text=\r\n" + strings.Repeat("Log notice stdout\r\n", 100) + ".\r\n250 OK\r\n",
	}
	for name, wire := range cases {
		b.Run(name, func(b *testing.B) {
			buf := bytes.Repeat([]byte(wire), 1000)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			rd := bytes.NewReader(buf)
			rr := newReplyReader(rd, 0)
			for b.Loop() {
				if _, err := rr.ReadReply(); err != nil {
					rd.Reset(buf)
					rr = newReplyReader(rd, 0)
					if _, err := rr.ReadReply(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// genReader produces a reply without holding it in memory: a data block of
// n lines of 1 KiB, then "250 OK".
type genReader struct {
	state int
	left  int
	buf   []byte
}

var genLine = append(bytes.Repeat([]byte("r"), 1022), '\r', '\n')

func (g *genReader) Read(p []byte) (int, error) {
	if len(g.buf) == 0 {
		switch {
		case g.state == 0:
			g.buf = []byte("250+ns/all=\r\n")
			g.state = 1
		case g.state == 1 && g.left > 0:
			g.buf = genLine
			g.left--
		case g.state == 1:
			g.buf = []byte(".\r\n250 OK\r\n")
			g.state = 2
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestReplyMemory: reading a reply costs about its size, not a multiple.
// A big reply is read in chunks and joined once at its end: reading 15 MiB
// allocates about twice that in all and keeps one buffer of its size;
// refusing a 64 MiB reply at a 16 MiB cap costs about the cap.
func TestReplyMemory(t *testing.T) {
	const max = 16 << 20
	measure := func(lines int) (uint64, *Reply, error) {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		rep, err := newReplyReader(&genReader{left: lines}, max).ReadReply()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc, rep, err
	}
	size := 15 << 20
	alloc, rep, err := measure(size >> 10)
	require.NoError(t, err)
	require.Equal(t, (size>>10)*1023-1, len(rep.Lines[0].Data)) // 1022 bytes a line, joined by "\n"
	t.Logf("15 MiB reply: %d MiB allocated (%.2f×)", alloc>>20, float64(alloc)/float64(size))
	assert.Less(t, float64(alloc), 2.3*float64(size))

	alloc, _, err = measure(64 << 10) // a hostile 64 MiB reply
	require.ErrorIs(t, err, ErrProtocol)
	t.Logf("64 MiB reply refused at a 16 MiB cap: %d MiB allocated (%.2f× the cap)", alloc>>20, float64(alloc)/float64(max))
	assert.Less(t, float64(alloc), 1.2*float64(max))

	// Many tiny lines are charged their in-memory cost, not their bytes.
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString("250-\r\n")
	}
	b.WriteString("250 OK\r\n")
	_, err = newReplyReader(strings.NewReader(b.String()), 1<<20).ReadReply()
	assert.ErrorIs(t, err, ErrProtocol, "1 MiB of empty lines takes far more than 1 MiB as Lines")
}

// TestBigDataBlockAcrossChunks: a data block that spans many chunks, with
// dot-stuffed, empty and long lines, decodes exactly as a small one.
func TestBigDataBlockAcrossChunks(t *testing.T) {
	var want []string
	for i := 0; len(want) < 5000; i++ {
		switch i % 7 {
		case 0:
			want = append(want, "")
		case 1:
			want = append(want, ".dot "+strconv.Itoa(i))
		case 2:
			want = append(want, strings.Repeat("L", 5000+i%3000)) // longer than the slack
		default:
			want = append(want, "r relay "+strconv.Itoa(i))
		}
	}
	want = append(want, "end") // (a final empty line would read as none)
	data := strings.Join(want, "\n")
	wire := "250-a=1\r\n250+ns/all=\r\n" + strings.Join(controltest.DataBlock(data), "\r\n") + "\r\n250-b=2\r\n250 OK\r\n"
	rep, err := newReplyReader(strings.NewReader(wire), 0).ReadReply()
	require.NoError(t, err)
	require.Len(t, rep.Lines, 4)
	assert.Equal(t, "a=1", rep.Lines[0].Text)
	assert.Equal(t, "ns/all=", rep.Lines[1].Text)
	assert.True(t, rep.Lines[1].Data == data, "data block differs (%d vs %d bytes)", len(rep.Lines[1].Data), len(data))
	assert.Equal(t, "b=2", rep.Lines[2].Text)
	assert.Equal(t, "OK", rep.Lines[3].Text)
}
