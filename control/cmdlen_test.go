package control

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control/controltest"
)

// TestEveryCommandIsMeasured: whatever method builds it, a command longer
// than tor accepts is refused with a *CommandTooLongError before anything
// is written, and the connection stays usable; one at the limit is sent.
func TestEveryCommandIsMeasured(t *testing.T) {
	var mu sync.Mutex
	var seen []int // lengths of the lines the fake tor received
	c := fake(t, func(s *controltest.Conn) {
		for {
			l, err := s.ReadLine()
			if err != nil {
				return
			}
			mu.Lock()
			seen = append(seen, len(l))
			mu.Unlock()
			if strings.HasPrefix(l, "+") {
				for {
					d, err := s.ReadLine()
					if err != nil || d == "." {
						break
					}
				}
			}
			if strings.HasPrefix(l, "PROTOCOLINFO") {
				s.Reply("250-PROTOCOLINFO 1", "250-AUTH METHODS=HASHEDPASSWORD", "250-VERSION Tor=\"0.4.9.11\"", "250 OK")
				continue
			}
			s.Reply("250 OK")
		}
	})
	ctx := context.Background()
	// pad returns a token that makes a command with the given prefix (and
	// fixed suffix) exactly n bytes long.
	pad := func(prefix string, n int) string { return strings.Repeat("a", n-len(prefix)) }
	over := MaxCommandLength + 1
	calls := map[string]func(n int) error{
		"Request": func(n int) error { _, err := c.Request(ctx, "GETINFO "+pad("GETINFO ", n)); return err },
		"GetInfo": func(n int) error { _, err := c.GetInfo(ctx, pad("GETINFO ", n)); return err },
		"GetConf": func(n int) error { _, err := c.GetConf(ctx, pad("GETCONF ", n)); return err },
		"SetConf": func(n int) error {
			return c.SetConf(ctx, ConfEntry{Key: "ContactInfo", Value: pad(`SETCONF ContactInfo=""`, n)})
		},
		"Signal": func(n int) error { return c.Signal(ctx, pad("SIGNAL ", n)) },
		"SetEvents": func(n int) error {
			return c.SetEvents(ctx, pad("SETEVENTS ", n))
		},
		"MapAddress": func(n int) error {
			_, err := c.MapAddress(ctx, AddressMapping{From: "0.0.0.0", To: pad("MAPADDRESS 0.0.0.0=", n)})
			return err
		},
		"AddOnion": func(n int) error {
			p := "ADD_ONION NEW:BEST Port=80,"
			_, err := c.AddOnion(ctx, &AddOnionRequest{Ports: []OnionPort{{VirtPort: 80, Target: pad(p, n)}}})
			return err
		},
		"OnionClientAuthAdd": func(n int) error {
			addr := strings.Repeat("b", 56)
			_, err := c.OnionClientAuthAdd(ctx, OnionClientAuth{Address: addr, KeyType: "x25519", PrivateKey: pad("ONION_CLIENT_AUTH_ADD "+addr+" x25519:", n)})
			return err
		},
		"Start": func(n int) error {
			call, err := c.Start("GETINFO " + pad("GETINFO ", n))
			if err == nil {
				_, err = call.Wait(ctx)
			}
			return err
		},
		// Multi-line commands: line, data and "." with CRLFs, as a whole.
		"LoadConf": func(n int) error {
			// "+LOADCONF\r\n" + "#" + x + "\r\n" + ".\r\n" is n+2 bytes.
			return c.LoadConf(ctx, "#"+strings.Repeat("x", n+2-len("+LOADCONF\r\n#\r\n.\r\n")))
		},
		"PostDescriptor": func(n int) error {
			return c.PostDescriptor(ctx, "#"+strings.Repeat("x", n+2-len("+POSTDESCRIPTOR\r\n#\r\n.\r\n")), "", "")
		},
	}
	for name, call := range calls {
		err := call(over)
		var tl *CommandTooLongError
		require.ErrorAs(t, err, &tl, name)
		assert.ErrorIs(t, err, ErrInvalidArgument, name)
		assert.Equal(t, MaxCommandLength+3, tl.Length, name)
		assert.Equal(t, MaxCommandLength+2, tl.Max, name)
		// At the limit the command is sent (the fake's "250 OK" may not be
		// a valid answer to it, as for ADD_ONION, but it is an answer).
		err = call(MaxCommandLength)
		assert.False(t, errors.As(err, &tl), "%s at the limit: %v", name, err)
		assert.NotErrorIs(t, err, ErrInvalidArgument, name)
	}
	// AUTHENTICATE: the password goes hex-encoded, two bytes per byte.
	pw := strings.Repeat("p", (MaxCommandLength-len("AUTHENTICATE "))/2+1)
	err := c.Authenticate(ctx, WithPassword(pw))
	var tl *CommandTooLongError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, "AUTHENTICATE", tl.Command)

	_, err = c.Request(ctx, "GETINFO version")
	require.NoError(t, err, "the connection is still usable")
	mu.Lock()
	defer mu.Unlock()
	for _, n := range seen {
		assert.LessOrEqual(t, n, MaxCommandLength, "a line over the limit was written")
	}
	assert.True(t, errors.Is(&CommandTooLongError{}, ErrInvalidArgument))
}
