package controltest

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func dial(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial(s.Network, s.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc, bufio.NewReader(nc)
}

func TestTranscriptPlays(t *testing.T) {
	tr, err := ParseTranscript("t", []byte(`# comment

S: 650 BW 0 0
C: GETINFO version
C~ ^AUTHCHALLENGE SAFECOOKIE [0-9a-f]+$
S: 250-version=1
S: 250 OK
S! "250 raw\rbyte\r\n"
C: +LOADCONF
C: ..x
C: .
!wait go
S: 250 OK
!close
`))
	require.NoError(t, err)
	srv := NewServer(tr)
	defer srv.Close()
	nc, br := dial(t, srv)
	line, _ := br.ReadString('\n')
	assert.Equal(t, "650 BW 0 0\r\n", line)
	io.WriteString(nc, "GETINFO version\r\nAUTHCHALLENGE SAFECOOKIE 00ff\n")
	for _, want := range []string{"250-version=1\r\n", "250 OK\r\n", "250 raw\rbyte\r\n"} {
		line, _ = br.ReadString('\n')
		assert.Equal(t, want, line)
	}
	io.WriteString(nc, "+LOADCONF\r\n..x\r\n.\r\n")
	tr.Release("go")
	tr.Release("go") // idempotent
	line, _ = br.ReadString('\n')
	assert.Equal(t, "250 OK\r\n", line)
	_, err = br.ReadString('\n')
	assert.Equal(t, io.EOF, err) // !close
	srv.Close()
	assert.NoError(t, tr.Err())
	assert.Panics(t, func() { tr.Release("nope") })
}

func TestTranscriptMismatches(t *testing.T) {
	for name, tc := range map[string]struct {
		script, send, want string
	}{
		"exact":       {"C: GETINFO version\n", "GETINFO VERSION\r\n", `client sent "GETINFO VERSION", want "GETINFO version"`},
		"regexp":      {"C~ ^A+$\n", "B\r\n", `want a match of "^A+$"`},
		"extra":       {"C: A\nS: 250 OK\n", "A\r\nB\r\n", `client sent "B" after the end of the transcript`},
		"missing":     {"C: A\nC: B\n", "A\r\n", "expected a command, client sent none"},
		"eof wanted":  {"C: A\n!eof\n", "A\r\nB\r\n", `expected the client to close, got "B"`},
		"eof honored": {"C: A\n!eof\n", "A\r\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := ParseTranscript("t", []byte(tc.script))
			require.NoError(t, err)
			srv := NewServer(tr)
			nc, _ := dial(t, srv)
			io.WriteString(nc, tc.send)
			nc.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, nc)
			srv.Close()
			if tc.want == "" {
				assert.NoError(t, tr.Err())
				return
			}
			assert.ErrorIs(t, tr.Err(), ErrTranscript)
			assert.ErrorContains(t, tr.Err(), tc.want)
		})
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	for _, bad := range []string{"X: what", "C~ (", `S! "unterminated`, "!sleep 1"} {
		_, err := ParseTranscript("bad", []byte(bad))
		assert.Error(t, err, bad)
	}
	_, err := LoadTranscript("/nonexistent")
	assert.Error(t, err)
	tr, err := ParseTranscript("ok", []byte("C:\nS:\r\n"))
	require.NoError(t, err)
	assert.Len(t, tr.items, 2)
}

func TestNewTranscriptServer(t *testing.T) {
	srv, tr := NewTranscriptServer(t, "../../testdata/control/unit_cancel.txt")
	nc, br := dial(t, srv)
	io.WriteString(nc, "GETINFO version\r\n")
	tr.Release("reply")
	line, _ := br.ReadString('\n')
	assert.Equal(t, "250-version=0.4.9.11\r\n", line)
	br.ReadString('\n')
	io.WriteString(nc, "GETINFO config-file\r\n")
	line, _ = br.ReadString('\n')
	assert.Equal(t, "250-config-file=/etc/tor/torrc\r\n", line)
}

func TestUnixServerAndCommands(t *testing.T) {
	got := make(chan *Command, 4)
	srv := NewUnixServer(HandlerFunc(func(c *Conn) {
		for {
			cmd, err := c.ReadCommand()
			if err != nil {
				return
			}
			got <- cmd
			c.Reply(append([]string{"250+data="}, append(DataBlock(".dot\nx\n"), "250 OK")...)...)
		}
	}))
	defer srv.Close()
	assert.Equal(t, "unix", srv.Network)
	nc, br := dial(t, srv)
	io.WriteString(nc, "+hspost HSADDRESS=x\r\n..a\r\nb\r\n.\r\n")
	cmd := <-got
	assert.Equal(t, &Command{Line: "+hspost HSADDRESS=x", Keyword: "HSPOST", Args: "HSADDRESS=x", Data: ".a\nb", HasData: true}, cmd)
	var reply []string
	for i := 0; i < 5; i++ {
		l, _ := br.ReadString('\n')
		reply = append(reply, l)
	}
	assert.Equal(t, []string{"250+data=\r\n", "..dot\r\n", "x\r\n", ".\r\n", "250 OK\r\n"}, reply)
	assert.Equal(t, []string{"", "."}, DataBlock(""))

	io.WriteString(nc, "+LOADCONF\r\nunterminated")
	nc.(*net.UnixConn).CloseWrite()
	srv.CloseClients()
	_, err := br.ReadString('\n')
	assert.Error(t, err)
}

func TestConnReadLine(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a)
	assert.Equal(t, a, c.NetConn())
	go func() {
		io.WriteString(b, "bare LF\nCRLF\r\npartial")
		b.Close()
	}()
	l, err := c.ReadLine()
	require.NoError(t, err)
	assert.Equal(t, "bare LF", l)
	l, _ = c.ReadLine()
	assert.Equal(t, "CRLF", l)
	_, err = c.ReadLine()
	assert.Equal(t, io.ErrUnexpectedEOF, err)
	c.Close()
}

func TestRecord(t *testing.T) {
	a, b := net.Pipe()
	var log bytes.Buffer
	rec := Record(a, &log)
	go func() {
		br := bufio.NewReader(b)
		br.ReadString('\n')
		br.ReadString('\n')
		io.WriteString(b, "250-a=\xff\r\n250 OK\r\n")
		b.Close()
	}()
	io.WriteString(rec, "GETINFO a\r\nX \x01")
	io.WriteString(rec, "\r\n")
	data, _ := io.ReadAll(rec)
	assert.Equal(t, "250-a=\xff\r\n250 OK\r\n", string(data))
	assert.Equal(t, "C: GETINFO a\nC: X \x01\nS! \"250-a=\\xff\\r\\n\"\nS: 250 OK\n!close\n", log.String())
	// The recording plays back.
	tr, err := ParseTranscript("rec", []byte(strings.ReplaceAll(log.String(), "C: X \x01\n", "")))
	require.NoError(t, err)
	assert.Len(t, tr.items, 4)
}
