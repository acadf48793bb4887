package control_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
)

// TestRealCommandLengthLimit probes tor's limit at the boundary, through
// this package and with raw bytes: a command line of MaxCommandLength bytes
// is answered; one byte more is refused here without being sent (through
// the package) and gets "500 Line too long." and a closed connection
// (raw). The same for a multi-line command as a whole.
func TestRealCommandLengthLimit(t *testing.T) {
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	key := func(n int) string { return strings.Repeat("a", n-len("GETINFO ")) }
	_, err := c.GetInfo(ctx, key(control.MaxCommandLength))
	assert.ErrorIs(t, err, control.ErrUnrecognizedEntity, "at the limit tor reads the command and answers 552")
	_, err = c.GetInfo(ctx, key(control.MaxCommandLength+1))
	var tl *control.CommandTooLongError
	require.ErrorAs(t, err, &tl)
	v, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err, "limit+1 was not sent: the connection is still open")
	assert.NotEmpty(t, v)

	// +LOADCONF: "+LOADCONF\r\n" + data line + "\r\n.\r\n" is n+2 bytes.
	torrc := func(n int) string { return "#" + strings.Repeat("x", n+2-len("+LOADCONF\r\n#\r\n.\r\n")) }
	err = c.LoadConf(ctx, torrc(control.MaxCommandLength))
	var cerr *control.Error
	require.ErrorAs(t, err, &cerr, "tor read the whole command and judged the config")
	assert.NotEqual(t, 500, cerr.Code)
	err = c.LoadConf(ctx, torrc(control.MaxCommandLength+1))
	require.ErrorAs(t, err, &tl)
	_, err = c.GetInfoValue(ctx, "version")
	require.NoError(t, err)

	// Raw: one byte over the limit is what tor refuses.
	cookie, err := os.ReadFile(tor.CookieFile)
	require.NoError(t, err)
	raw := func(cmd string) string {
		nc, err := net.Dial("unix", tor.ControlSocket)
		require.NoError(t, err)
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(nc)
		fmt.Fprintf(nc, "AUTHENTICATE %s\r\n", hex.EncodeToString(cookie))
		l, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "250 OK\r\n", l)
		_, err = nc.Write([]byte(cmd))
		if err != nil {
			return "write: " + err.Error()
		}
		l, _ = br.ReadString('\n')
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			return l + "(open)"
		}
		return l
	}
	assert.True(t, strings.HasPrefix(raw("GETINFO "+key(control.MaxCommandLength)+"\r\nQUIT\r\n"), "552 "))
	assert.Equal(t, "500 Line too long.\r\n", raw("GETINFO "+key(control.MaxCommandLength+1)+"\r\n"))
	assert.Equal(t, "500 Line too long.\r\n", raw("+LOADCONF\r\n"+torrc(control.MaxCommandLength+1)+"\r\n.\r\n"))
	got := raw("+LOADCONF\r\n" + torrc(control.MaxCommandLength) + "\r\n.\r\nQUIT\r\n")
	assert.True(t, strings.HasPrefix(got, "55"), "%q", got)
}
