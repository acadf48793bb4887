package control_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
)

// fakeTor serves a transcript of a tor session on a loopback port, so that
// the examples run without a tor. Each transcript starts like a real
// session: PROTOCOLINFO, then AUTHENTICATE (NULL authentication here).
func fakeTor(transcript string) *controltest.Server {
	tr, err := controltest.ParseTranscript("example", []byte(`
C: PROTOCOLINFO 1
S: 250-PROTOCOLINFO 1
S: 250-AUTH METHODS=NULL
S: 250-VERSION Tor="0.4.9.11"
S: 250 OK
C: AUTHENTICATE
S: 250 OK
`+transcript))
	if err != nil {
		panic(err)
	}
	return controltest.NewServer(tr)
}

func Example() {
	srv := fakeTor(`
C: GETINFO version
S: 250-version=0.4.9.11
S: 250 OK
`)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// With a real tor: control.Dial(ctx, "unix", "/run/tor/control").
	c, err := control.Dial(ctx, srv.Network, srv.Addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(ctx); err != nil { // SAFECOOKIE, password or NULL
		log.Fatal(err)
	}
	v, err := c.GetInfoValue(ctx, "version")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tor", v)
	// Output: tor 0.4.9.11
}

func ExampleConnect() {
	ctx := context.Background()
	// Dial and authenticate in one step, with a control password.
	c, err := control.Connect(ctx, "tcp", "127.0.0.1:9051", []control.AuthOption{control.WithPassword("secret")})
	if err != nil {
		var ae *control.AuthError
		if errors.As(err, &ae) {
			log.Fatalf("tor offers %v: %v", ae.Offered, err)
		}
		log.Fatal(err)
	}
	defer c.Close()
}

func ExampleConn_Subscribe() {
	srv := fakeTor(`
C: GETINFO events/names
S: 250-events/names=CIRC STREAM STATUS_CLIENT NOTICE
S: 250 OK
C: SETEVENTS STATUS_CLIENT
S: 250 OK
S: 650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"
S: 650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"
C: SETEVENTS
S: 250 OK
`)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// When Subscribe returns, tor sends the events: a command issued now
	// cannot miss the events it causes.
	sub, err := c.Subscribe(ctx, "STATUS_CLIENT")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for ev := range sub.Events() {
		p, err := ev.Parsed() // parsed once for every subscriber
		if err != nil {
			log.Print(err) // a malformed event; later ones keep coming
			continue
		}
		st := p.(*control.StatusEvent) // the typed form of STATUS_CLIENT
		if b, ok := st.Bootstrap(); ok {
			fmt.Printf("%d%% %s\n", b.Progress, b.Summary)
			if b.Done() {
				break
			}
		}
	}
	// Output:
	// 50% Loading relay descriptors
	// 100% Done
}

func ExampleConn_SetConf() {
	srv := fakeTor(`
C: SETCONF ContactInfo="line one\nline two" ExitPolicy="accept *:443" ExitPolicy="reject *:*"
S: 250 OK
C: GETCONF ContactInfo ExitPolicy Nickname
S: 250-ContactInfo="line one\nline two"
S: 250-ExitPolicy=accept *:443
S: 250-ExitPolicy=reject *:*
S: 250 Nickname
`)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Values are quoted for tor: a newline is data, never a second command.
	// A multi-valued option repeats its key.
	err = c.SetConf(ctx,
		control.ConfEntry{Key: "ContactInfo", Value: "line one\nline two"},
		control.ConfEntry{Key: "ExitPolicy", Value: "accept *:443"},
		control.ConfEntry{Key: "ExitPolicy", Value: "reject *:*"})
	if err != nil {
		log.Fatal(err)
	}
	entries, err := c.GetConf(ctx, "ContactInfo", "ExitPolicy", "Nickname")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		if e.Unset {
			fmt.Printf("%s is unset\n", e.Key)
			continue
		}
		fmt.Printf("%s = %q\n", e.Key, e.Value)
	}
	// Output:
	// ContactInfo = "line one\nline two"
	// ExitPolicy = "accept *:443"
	// ExitPolicy = "reject *:*"
	// Nickname is unset
}

func ExampleConn_AddOnion() {
	srv := fakeTor(`
C: ADD_ONION NEW:BEST Flags=DiscardPK Port=80,unix:/run/app.sock
S: 250-ServiceID=kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd
S: 250 OK
C: DEL_ONION kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd
S: 250 OK
`)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	svc, err := c.AddOnion(ctx, &control.AddOnionRequest{
		Ports: []control.OnionPort{{VirtPort: 80, Target: "unix:/run/app.sock"}},
		Flags: []string{control.FlagDiscardPK},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(svc.ServiceID + ".onion")
	// The service lives as long as this connection, or until DEL_ONION.
	if err := c.DelOnion(ctx, svc.ServiceID); err != nil {
		log.Fatal(err)
	}
	// Output: kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd.onion
}

func ExampleConn_Start() {
	srv := fakeTor(`
C: GETINFO version
C: GETINFO config-file
S: 250-version=0.4.9.11
S: 250 OK
S: 250-config-file=/etc/tor/torrc
S: 250 OK
`)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Both commands are written before either reply is read.
	a, err := c.Start("GETINFO version")
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.Start("GETINFO config-file")
	if err != nil {
		log.Fatal(err)
	}
	for _, call := range []*control.Call{a, b} {
		reply, err := call.Wait(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(reply.Lines[0].Text)
	}
	// Output:
	// version=0.4.9.11
	// config-file=/etc/tor/torrc
}

func ExampleError() {
	srv := fakeTor(`
C: GETINFO no-such-key
S: 552 Unrecognized key "no-such-key"
`)
	defer srv.Close()
	ctx := context.Background()
	c, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.GetInfoValue(ctx, "no-such-key")
	fmt.Println(errors.Is(err, control.ErrUnrecognizedEntity))
	var cerr *control.Error
	if errors.As(err, &cerr) {
		fmt.Println(cerr.Code, cerr.Text)
	}
	// Values that could start a second command are refused before anything
	// is written.
	_, err = c.GetInfoValue(ctx, "version\r\nSIGNAL SHUTDOWN")
	fmt.Println(errors.Is(err, control.ErrInvalidArgument))
	// Output:
	// true
	// 552 Unrecognized key "no-such-key"
	// true
}
