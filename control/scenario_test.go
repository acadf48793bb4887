package control_test

// Scenarios are control sessions that run twice: against a real tor that
// the test starts (integration), and against the transcript of that session
// recorded in testdata/control (unit test, through controltest). Running
// with -capture records the transcripts anew from the real tor:
//
//	go test ./control -run TestScenarios/real -capture

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/testtor"
)

var capture = flag.Bool("capture", false, "record the scenario transcripts in testdata/control from a real tor")

const (
	transcriptDir = "../testdata/control"
	// sanitizedDir replaces the test tor's temporary directory in
	// recorded transcripts.
	sanitizedDir = "/tmp/testtor"
	testPassword = "correct horse battery staple"
)

// fixedNonce makes SAFECOOKIE sessions replayable.
var fixedNonce = bytes.Repeat([]byte{0x42}, 32)

// env tells a scenario about the tor it talks to.
type env struct {
	dir      string // the tor's directory, as the session sees it
	cookie   string // a copy of the tor's cookie file ("" without cookie auth)
	real     bool   // a real tor (not a transcript)
	running  func() bool
	password string
}

type scenario struct {
	name string
	tor  testtor.Options
	run  func(t *testing.T, ctx context.Context, c *control.Conn, e env)
}

func authNull(t *testing.T, ctx context.Context, c *control.Conn) {
	t.Helper()
	require.NoError(t, c.Authenticate(ctx))
}

var scenarios = []scenario{
	{
		name: "auth_safecookie",
		tor:  testtor.Options{Password: testPassword},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			pi, err := c.ProtocolInfo(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, pi.PIVersion)
			assert.Equal(t, []string{"COOKIE", "SAFECOOKIE", "HASHEDPASSWORD"}, pi.AuthMethods)
			assert.Equal(t, e.dir+"/data/control_auth_cookie", pi.CookieFile)
			assert.True(t, strings.HasPrefix(pi.TorVersion, "0.4."), pi.TorVersion)
			// Cached: a second PROTOCOLINFO before authentication would make
			// tor close the connection.
			pi2, err := c.ProtocolInfo(ctx)
			require.NoError(t, err)
			assert.Same(t, pi, pi2)
			require.NoError(t, c.Authenticate(ctx, control.WithCookieFile(e.cookie), control.WithClientNonce(fixedNonce)))
			v, err := c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
			assert.Equal(t, pi.TorVersion, v)
		},
	},
	{
		name: "auth_cookie",
		tor:  testtor.Options{},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			require.NoError(t, c.Authenticate(ctx, control.WithCookieFile(e.cookie), control.WithAuthMethod("cookie")))
			_, err := c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
		},
	},
	{
		name: "auth_password",
		tor:  testtor.Options{Password: testPassword, NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			pi, err := c.ProtocolInfo(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"HASHEDPASSWORD"}, pi.AuthMethods)
			assert.Empty(t, pi.CookieFile)
			require.NoError(t, c.Authenticate(ctx, control.WithPassword(e.password)))
			_, err = c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
		},
	},
	{
		name: "auth_password_wrong",
		tor:  testtor.Options{Password: testPassword},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			err := c.Authenticate(ctx, control.WithPassword("wrong"), control.WithAuthMethod(control.AuthHashedPassword))
			var aerr *control.AuthError
			require.ErrorAs(t, err, &aerr)
			assert.Equal(t, "HASHEDPASSWORD", aerr.Method)
			assert.Equal(t, []string{"COOKIE", "SAFECOOKIE", "HASHEDPASSWORD"}, aerr.Offered)
			assert.ErrorIs(t, err, control.ErrBadAuthentication)
			assert.Contains(t, err.Error(), "tor offers COOKIE,SAFECOOKIE,HASHEDPASSWORD; tried HASHEDPASSWORD")
			// Tor closes the connection after a failed AUTHENTICATE.
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("connection still open after failed authentication")
			}
			_, err = c.GetInfoValue(ctx, "version")
			assert.ErrorIs(t, err, net.ErrClosed)
		},
	},
	{
		name: "auth_null",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			pi, err := c.ProtocolInfo(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"NULL"}, pi.AuthMethods)
			require.NoError(t, c.Authenticate(ctx))
			_, err = c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
		},
	},
	{
		name: "auth_required",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			_, err := c.GetInfoValue(ctx, "version")
			require.ErrorIs(t, err, control.ErrAuthenticationRequired)
			<-c.Done()
			assert.ErrorIs(t, c.Err(), io.EOF)
		},
	},
	{
		name: "auth_challenge_refused",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			_, _, err := c.AuthChallenge(ctx, fixedNonce)
			assert.ErrorIs(t, err, control.ErrBadAuthentication) // cookie authentication is disabled
			<-c.Done()
		},
	},
	{
		name: "getinfo",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			authNull(t, ctx, c)
			m, err := c.GetInfo(ctx, "version", "config-file", "config-text", "events/names", "net/listeners/control")
			require.NoError(t, err)
			assert.Equal(t, e.dir+"/torrc", m[1])
			assert.Contains(t, m[2], "DisableNetwork 1\n")
			assert.Contains(t, m[2], "DataDirectory "+e.dir+"/data")
			assert.False(t, strings.HasSuffix(m[2], "\n"))
			assert.Contains(t, strings.Fields(m[3]), "HS_DESC")
			assert.Contains(t, m[4], `"127.0.0.1:`)
			assert.Len(t, m, 5)

			// Keys are case-sensitive; one unknown key fails the request.
			_, err = c.GetInfoValue(ctx, "VERSION")
			assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
			_, err = c.GetInfo(ctx, "version", "no-such-key")
			var cerr *control.Error
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, 552, cerr.Code)
			assert.Equal(t, "GETINFO", cerr.Command)
			assert.Contains(t, cerr.Text, "no-such-key")

			// Values that cannot be sent are refused before anything is written
			// (a transcript server would fail on any unexpected line).
			for _, bad := range []string{"version\r\nSIGNAL SHUTDOWN", "a b", "", "x\x00", `"q"`} {
				_, err = c.GetInfo(ctx, bad)
				assert.ErrorIs(t, err, control.ErrInvalidArgument, "%q", bad)
			}
			_, err = c.Request(ctx, "GETINFO version\r\nSIGNAL SHUTDOWN")
			assert.ErrorIs(t, err, control.ErrInvalidArgument)
			v, err := c.GetInfoValue(ctx, "version")
			require.NoError(t, err)
			assert.NotEmpty(t, v)
		},
	},
	{
		name: "conf",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			authNull(t, ctx, c)
			awkward := []string{
				"plain", "with spaces", `say "hi"`, `back\slash`, `C:\\Users\\tor\x`, "has # hash",
				"tab\there", "line1\nline2", "utf8 é ünï ☃", `"starts with quote`, "ends with backslash\\",
				"\r\nSIGNAL SHUTDOWN", "ctrl \x01\x7f bytes", " leading and trailing ", "=", `\n literal`,
			}
			for _, v := range awkward {
				require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: v}), "%q", v)
				got, err := c.GetConf(ctx, "contactinfo")
				require.NoError(t, err)
				assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: v}}, got, "%q", v)
			}
			if e.real {
				assert.True(t, e.running(), "tor must keep running")
			}
			// Empty and bare values unset the option; RESETCONF returns to the default.
			require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: ""}))
			got, err := c.GetConf(ctx, "ContactInfo", "Nickname", "SocksPort", "socksport")
			require.NoError(t, err)
			assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Unset: true}, {Key: "Nickname", Unset: true},
				{Key: "SocksPort", Value: "0"}, {Key: "SocksPort", Value: "0"}}, got)
			require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: "x"}))
			require.NoError(t, c.ResetConf(ctx, control.ConfEntry{Key: "ContactInfo", Unset: true}))
			got, err = c.GetConf(ctx, "ContactInfo")
			require.NoError(t, err)
			assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Unset: true}}, got)

			// Multi-valued options, in order.
			require.NoError(t, c.SetConf(ctx,
				control.ConfEntry{Key: "ExitPolicy", Value: "accept *:80"},
				control.ConfEntry{Key: "ExitPolicy", Value: "reject *:*"},
				control.ConfEntry{Key: "ContactInfo", Value: "two at once"}))
			got, err = c.GetConf(ctx, "ExitPolicy", "ContactInfo")
			require.NoError(t, err)
			assert.Equal(t, []control.ConfEntry{{Key: "ExitPolicy", Value: "accept *:80"},
				{Key: "ExitPolicy", Value: "reject *:*"}, {Key: "ContactInfo", Value: "two at once"}}, got)

			// Errors.
			_, err = c.GetConf(ctx, "NoSuchOption", "AlsoNot")
			var cerr *control.Error
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, 552, cerr.Code)
			assert.Len(t, cerr.Lines, 2)
			err = c.SetConf(ctx, control.ConfEntry{Key: "NoSuchOpt", Value: "1"})
			assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
			err = c.SetConf(ctx, control.ConfEntry{Key: "ConnLimit", Value: "abc"})
			assert.ErrorIs(t, err, control.ErrUnrecognizedArgument) // 513
			err = c.SetConf(ctx, control.ConfEntry{Key: "DataDirectory", Value: "/elsewhere"})
			assert.ErrorIs(t, err, control.ErrInvalidConfigValue) // 553
			assert.Contains(t, err.Error(), "553 Transition not allowed")

			// Refused before writing.
			for _, bad := range []control.ConfEntry{{Key: "Contact Info", Value: "x"}, {Key: "ContactInfo\r\nSIGNAL", Value: "x"},
				{Key: "ContactInfo", Value: "nul\x00"}, {Key: "a=b", Value: "x"}, {Key: ""}} {
				assert.ErrorIs(t, c.SetConf(ctx, bad), control.ErrInvalidArgument, "%q", bad)
			}
			assert.ErrorIs(t, c.SetConf(ctx), control.ErrInvalidArgument)
			empty, err := c.GetConf(ctx)
			assert.NoError(t, err)
			assert.Empty(t, empty)

			// LOADCONF with the current configuration succeeds; with a partial
			// one the transition is refused.
			text, err := c.GetInfoValue(ctx, "config-text")
			require.NoError(t, err)
			require.NoError(t, c.LoadConf(ctx, text))
			err = c.LoadConf(ctx, "ContactInfo x\n")
			assert.ErrorIs(t, err, control.ErrInvalidConfigValue)
			require.NoError(t, c.SaveConf(ctx, false))
			require.NoError(t, c.SaveConf(ctx, true))
		},
	},
	{
		name: "events",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			authNull(t, ctx, c)
			_, err := c.Subscribe(ctx, "CONF_CHANGED", "PT_LOG")
			assert.ErrorIs(t, err, control.ErrInvalidArgument)
			assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
			assert.Contains(t, err.Error(), "PT_LOG")

			conf, err := c.Subscribe(ctx, "conf_changed")
			require.NoError(t, err)
			sig, err := c.Subscribe(ctx, "SIGNAL", "CONF_CHANGED")
			require.NoError(t, err)
			assert.Equal(t, []string{"CONF_CHANGED", "SIGNAL"}, sig.Names())

			require.NoError(t, c.SetConf(ctx,
				control.ConfEntry{Key: "ExitPolicy", Value: "accept *:80"},
				control.ConfEntry{Key: "ExitPolicy", Value: "reject *:*"},
				control.ConfEntry{Key: "ContactInfo", Value: "tab\there"},
				control.ConfEntry{Key: "Nickname", Unset: true}))
			for _, s := range []*control.Subscription{conf, sig} {
				ev := receive(t, s)
				require.Equal(t, "CONF_CHANGED", ev.Type)
				cc, err := parsedAs[*control.ConfChangedEvent](ev)
				require.NoError(t, err)
				assert.Equal(t, []control.ConfEntry{{Key: "ContactInfo", Value: "tab\there"},
					{Key: "ExitPolicy", Value: "accept *:80"}, {Key: "ExitPolicy", Value: "reject *:*"}}, cc.Entries)
			}
			require.NoError(t, c.Signal(ctx, control.SignalClearDNSCache))
			ev := receive(t, sig)
			se, err := parsedAs[*control.SignalEvent](ev)
			require.NoError(t, err)
			assert.Equal(t, "CLEARDNSCACHE", se.Signal)

			// After conf is closed, CONF_CHANGED still reaches sig only.
			require.NoError(t, conf.Close())
			_, open := <-conf.Events()
			assert.False(t, open)
			require.NoError(t, c.SetConf(ctx, control.ConfEntry{Key: "ContactInfo", Value: "again"}))
			ev = receive(t, sig)
			assert.Equal(t, "CONF_CHANGED", ev.Type)
			require.NoError(t, sig.Close())
			require.NoError(t, sig.Close())

			assert.ErrorIs(t, c.Signal(ctx, "NOSUCHSIGNAL"), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.Signal(ctx, "NEWNYM\r\nSIGNAL SHUTDOWN"), control.ErrInvalidArgument)
			// A final round trip makes the async SETEVENTS of Close part of the
			// transcript before the connection closes.
			require.NoError(t, c.SetEvents(ctx))
		},
	},
	{
		name: "onion",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			authNull(t, ctx, c)
			r1, err := c.AddOnion(ctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80, Target: "127.0.0.1:8080"}}})
			require.NoError(t, err)
			assert.Len(t, r1.ServiceID, 56)
			assert.Equal(t, "ED25519-V3", r1.KeyType)
			blob, err := base64.StdEncoding.DecodeString(r1.KeyBlob)
			require.NoError(t, err)
			assert.Len(t, blob, 64)

			// Import a key derived from a fixed seed, with flags and options.
			r2, err := c.AddOnion(ctx, &control.AddOnionRequest{
				KeyType: control.KeyTypeED25519V3, KeyBlob: expandedKey(bytes.Repeat([]byte{7}, 32)),
				Ports:      []control.OnionPort{{VirtPort: 443, Target: "unix:" + e.dir + "/onion.sock"}, {VirtPort: 22}},
				Flags:      []string{control.FlagDiscardPK, control.FlagDetach},
				MaxStreams: 10,
			})
			require.NoError(t, err)
			assert.Empty(t, r2.KeyBlob)
			ids, err := c.GetInfo(ctx, "onions/current", "onions/detached")
			require.NoError(t, err)
			assert.Equal(t, r1.ServiceID, ids[0])
			assert.Equal(t, r2.ServiceID, ids[1])

			// The same key again collides.
			_, err = c.AddOnion(ctx, &control.AddOnionRequest{KeyType: control.KeyTypeED25519V3,
				KeyBlob: expandedKey(bytes.Repeat([]byte{7}, 32)), Ports: []control.OnionPort{{VirtPort: 80}}})
			assert.ErrorIs(t, err, control.ErrUnspecifiedTorError) // 550 Onion address collision

			r3, err := c.AddOnion(ctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 81, Target: "[::1]:81"}},
				Flags: []string{control.FlagV3Auth}, ClientAuthV3: []string{"QAGMXKS32IBX7ITFMV3DH5VM5IKOXNOM64YOJY4AE6IMWNRKFGIQ"}})
			require.NoError(t, err)
			assert.Equal(t, []string{"QAGMXKS32IBX7ITFMV3DH5VM5IKOXNOM64YOJY4AE6IMWNRKFGIQ"}, r3.ClientAuthV3)
			current, err := c.GetInfoValue(ctx, "onions/current")
			require.NoError(t, err)
			assert.Equal(t, r1.ServiceID+"\n"+r3.ServiceID, current) // a data block now

			_, err = c.AddOnion(ctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80}}, Flags: []string{"BasicAuth"}})
			assert.ErrorIs(t, err, control.ErrArgumentSyntax)
			_, err = c.AddOnion(ctx, &control.AddOnionRequest{KeyType: "RSA1024", KeyBlob: "x", Ports: []control.OnionPort{{VirtPort: 80}}})
			assert.Error(t, err)
			// Refused before writing.
			for _, req := range []*control.AddOnionRequest{
				{Ports: []control.OnionPort{{VirtPort: 80, Target: "127.0.0.1:80\r\nSIGNAL SHUTDOWN"}}},
				{Ports: []control.OnionPort{{VirtPort: 80, Target: "unix:/with space"}}},
				{Ports: nil},
				{Ports: []control.OnionPort{{VirtPort: 0}}},
				{Ports: []control.OnionPort{{VirtPort: 80}}, Flags: []string{"Detach,DiscardPK"}},
				{Ports: []control.OnionPort{{VirtPort: 80}}, MaxStreams: 70000},
				{Ports: []control.OnionPort{{VirtPort: 80}}, ClientAuthV3: []string{"a b"}},
				{KeyType: "NEW:X", KeyBlob: "BEST", Ports: []control.OnionPort{{VirtPort: 80}}},
			} {
				_, err = c.AddOnion(ctx, req)
				assert.ErrorIs(t, err, control.ErrInvalidArgument, "%+v", req)
			}

			require.NoError(t, c.DelOnion(ctx, r1.ServiceID))
			require.NoError(t, c.DelOnion(ctx, r2.ServiceID+".onion"))
			assert.ErrorIs(t, c.DelOnion(ctx, r1.ServiceID), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.DelOnion(ctx, "tooshort"), control.ErrArgumentSyntax)
			ids, err = c.GetInfo(ctx, "onions/current", "onions/detached")
			require.NoError(t, err)
			assert.Equal(t, r3.ServiceID, ids[0])
			assert.Equal(t, "", ids[1])

			// Client authorization credentials.
			const addr = "kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd"
			priv := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
			code, err := c.OnionClientAuthAdd(ctx, control.OnionClientAuth{Address: addr, PrivateKey: priv, ClientName: "alice"})
			require.NoError(t, err)
			assert.Equal(t, 250, code)
			code, err = c.OnionClientAuthAdd(ctx, control.OnionClientAuth{Address: addr, PrivateKey: priv})
			require.NoError(t, err)
			assert.Equal(t, 251, code)
			_, err = c.OnionClientAuthAdd(ctx, control.OnionClientAuth{Address: addr, PrivateKey: priv, Flags: []string{"Permanent"}})
			assert.ErrorIs(t, err, control.ErrInvalidConfigValue) // 553: no ClientOnionAuthDir
			creds, err := c.OnionClientAuthView(ctx, addr)
			require.NoError(t, err)
			require.Len(t, creds, 1)
			assert.Equal(t, addr, creds[0].Address)
			assert.Equal(t, "x25519", creds[0].KeyType)
			assert.Equal(t, priv, creds[0].PrivateKey)
			all, err := c.OnionClientAuthView(ctx, "")
			require.NoError(t, err)
			assert.Len(t, all, 1)
			code, err = c.OnionClientAuthRemove(ctx, addr)
			require.NoError(t, err)
			assert.Equal(t, 250, code)
			code, err = c.OnionClientAuthRemove(ctx, addr)
			require.NoError(t, err)
			assert.Equal(t, 251, code)

			// HSFETCH with the network off; v2-style ids are refused.
			assert.ErrorIs(t, c.HSFetch(ctx, "aaaaaaaaaaaaaaaa"), control.ErrUnrecognizedArgument)
			assert.ErrorIs(t, c.HSPost(ctx, "not a descriptor\n", addr), control.ErrInvalidDescriptor)
		},
	},
	{
		name: "misc",
		tor:  testtor.Options{NoCookie: true},
		run: func(t *testing.T, ctx context.Context, c *control.Conn, e env) {
			authNull(t, ctx, c)
			_, err := c.Request(ctx, "FOOBAR")
			assert.ErrorIs(t, err, control.ErrUnrecognizedCommand)
			_, err = c.Request(ctx, "SETROUTERPURPOSE x general")
			assert.ErrorIs(t, err, control.ErrUnimplementedCommand)

			res, err := c.MapAddress(ctx, control.AddressMapping{From: "1.2.3.4", To: "@@@"},
				control.AddressMapping{From: "0.0.0.0", To: "bogus1.google.com"},
				control.AddressMapping{From: "a.example", To: "b.example"})
			assert.ErrorIs(t, err, control.ErrArgumentSyntax)
			require.Len(t, res, 3)
			assert.ErrorIs(t, res[0].Err, control.ErrArgumentSyntax)
			assert.Equal(t, "bogus1.google.com", res[1].To)
			assert.True(t, strings.HasPrefix(res[1].From, "127."), res[1].From)
			assert.Equal(t, control.AddressMapping{From: "a.example", To: "b.example"}, res[2])
			_, err = c.MapAddress(ctx, control.AddressMapping{From: "a=b", To: "c"})
			assert.ErrorIs(t, err, control.ErrInvalidArgument)

			require.NoError(t, c.UseFeature(ctx, "EXTENDED_EVENTS", "VERBOSE_NAMES"))
			assert.ErrorIs(t, c.UseFeature(ctx, "NO_SUCH_FEATURE"), control.ErrUnrecognizedEntity)
			require.NoError(t, c.TakeOwnership(ctx))
			require.NoError(t, c.DropOwnership(ctx))
			require.NoError(t, c.DropOwnership(ctx))
			require.NoError(t, c.DropGuards(ctx))

			bt, err := c.Subscribe(ctx, "BUILDTIMEOUT_SET")
			require.NoError(t, err)
			require.NoError(t, c.DropTimeouts(ctx))
			ev := receive(t, bt)
			bte, err := parsedAs[*control.BuildTimeoutSetEvent](ev)
			require.NoError(t, err)
			assert.Equal(t, "RESET", bte.Type)
			require.NoError(t, bt.Close())

			am, err := c.Subscribe(ctx, "ADDRMAP")
			require.NoError(t, err)
			require.NoError(t, c.Resolve(ctx, false, "localhost.example"))
			_, err = c.MapAddress(ctx, control.AddressMapping{From: "c.example", To: "d.example"}) // an ADDRMAP event
			require.NoError(t, err)
			ev = receive(t, am)
			ame, err := parsedAs[*control.AddrMapEvent](ev)
			require.NoError(t, err)
			assert.NotEmpty(t, ame.Address)
			require.NoError(t, am.Close())

			_, err = c.ExtendCircuit(ctx, "0", nil, "")
			assert.ErrorIs(t, err, control.ErrInternal) // 551: no network
			_, err = c.ExtendCircuit(ctx, "12345", []string{"$0000000000000000000000000000000000000000"}, "general")
			assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.SetCircuitPurpose(ctx, "12345", "controller"), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.AttachStream(ctx, "12345", "0", 0), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.AttachStream(ctx, "12345", "1", 2), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.RedirectStream(ctx, "12345", "example.com", 80), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.CloseStream(ctx, "12345", 1), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.CloseCircuit(ctx, "12345", true), control.ErrUnrecognizedEntity)
			assert.ErrorIs(t, c.PostDescriptor(ctx, "not a descriptor\n.dot line\n", "general", "no"), control.ErrInvalidDescriptor)
			require.NoError(t, c.Quit(ctx))
			<-c.Done()
			_, err = c.GetInfoValue(ctx, "version")
			assert.ErrorIs(t, err, net.ErrClosed)
		},
	},
}

// receive returns the next event of s, failing t after a while.
func receive(t *testing.T, s *control.Subscription) *control.Event {
	t.Helper()
	select {
	case ev, ok := <-s.Events():
		require.True(t, ok, "subscription closed")
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no event for %v", s.Names())
		return nil
	}
}

// expandedKey returns the ADD_ONION ED25519-V3 blob for an ed25519 seed.
func expandedKey(seed []byte) string {
	_ = ed25519.NewKeyFromSeed(seed)
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	return base64.StdEncoding.EncodeToString(h[:])
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("real/"+sc.name, func(t *testing.T) { runReal(t, sc) })
		if *capture {
			continue
		}
		t.Run("transcript/"+sc.name, func(t *testing.T) { runTranscript(t, sc) })
	}
}

func runReal(t *testing.T, sc scenario) {
	tor := testtor.Start(t, sc.tor)
	nc, err := net.Dial("unix", tor.ControlSocket)
	require.NoError(t, err)
	var rec bytes.Buffer
	if *capture {
		nc = controltest.Record(nc, &rec)
		defer func() { saveTranscript(t, sc, tor, rec.String()) }()
	}
	c := control.NewConn(nc)
	defer c.Close()
	e := env{dir: tor.Dir, cookie: tor.CookieFile, real: true, running: tor.Running, password: testPassword}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc.run(t, ctx, c, e)
	c.Close()
	assert.True(t, tor.Running(), "tor exited:\n%s", tor.Output())
}

func saveTranscript(t *testing.T, sc scenario, tor *testtor.Tor, text string) {
	name := sc.name
	if t.Failed() {
		name += ".failed"
	}
	text = strings.ReplaceAll(text, tor.Dir, sanitizedDir)
	header := fmt.Sprintf("# Scenario %q recorded from %s (go test ./control -run TestScenarios/real -capture).\n"+
		"# The tor's directory is rewritten to %s.\n", sc.name, torVersion(t, tor), sanitizedDir)
	if err := os.WriteFile(filepath.Join(transcriptDir, name+".txt"), []byte(header+text), 0o644); err != nil {
		t.Error(err)
	}
	if tor.CookieFile != "" {
		ck, err := os.ReadFile(tor.CookieFile)
		if err == nil {
			err = os.WriteFile(filepath.Join(transcriptDir, sc.name+".cookie"), ck, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}
}

func torVersion(t *testing.T, tor *testtor.Tor) string {
	c := tor.Connect(t)
	v, err := c.GetInfoValue(context.Background(), "version")
	if err != nil {
		return "tor (version unknown)"
	}
	return "tor " + v
}

func runTranscript(t *testing.T, sc scenario) {
	srv, _ := controltest.NewTranscriptServer(t, filepath.Join(transcriptDir, sc.name+".txt"))
	c, err := control.Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	e := env{dir: sanitizedDir, password: testPassword, running: func() bool { return true }}
	if ck := filepath.Join(transcriptDir, sc.name+".cookie"); fileExists(ck) {
		e.cookie = ck
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc.run(t, ctx, c, e)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// parsedAs parses ev with Event.Parsed and returns it as a T, or an error if
// it does not parse as one.
func parsedAs[T any](ev *control.Event) (T, error) {
	var zero T
	p, err := ev.Parsed()
	if err != nil {
		return zero, err
	}
	t, ok := p.(T)
	if !ok {
		return zero, fmt.Errorf("%s parsed as %T, want %T", ev.Type, p, zero)
	}
	return t, nil
}
