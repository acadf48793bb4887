package config

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
)

// fakeTor is a fake control port that knows a configurable set of options
// and answers the configuration commands the way tor 0.4.9 does (as
// recorded in testdata/config/scenario.txt), counting the commands.
type fakeTor struct {
	mu       sync.Mutex
	names    []string // "Name Type"
	values   map[string][]string
	refuse   map[string]bool // GETCONF answers 552 for these keys
	commands []string
	conn     *controltest.Conn
	ready    chan struct{} // closed once SETEVENTS CONF_CHANGED arrived
}

func newFakeTor(n int) *fakeTor {
	f := &fakeTor{values: map[string][]string{}, refuse: map[string]bool{}, ready: make(chan struct{})}
	types := []string{"Boolean", "Integer", "TimeInterval", "DataSize", "String", "LineList", "Frobnicator"}
	for i := 0; i < n; i++ {
		typ := types[i%len(types)]
		name := fmt.Sprintf("Opt%05d", i)
		f.names = append(f.names, name+" "+typ)
		switch typ {
		case "LineList":
			f.values[name] = []string{"a", "b"}
		case "String":
			// unset
		default:
			f.values[name] = []string{"1"}
		}
	}
	f.names = append(f.names, "ContactInfo String", "HiddenServiceOptions Virtual",
		"HiddenServiceDir Dependent", "HiddenServicePort Dependent")
	f.values["Opt00006"] = []string{"an unknown type's value"}
	return f
}

func (f *fakeTor) send(lines ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn.Reply(lines...)
}

func (f *fakeTor) commandCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.commands)
}

func (f *fakeTor) ServeControl(c *controltest.Conn) {
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			return
		}
		f.mu.Lock()
		if cmd.Keyword != "PROTOCOLINFO" && cmd.Keyword != "AUTHENTICATE" {
			f.commands = append(f.commands, cmd.Keyword)
		}
		f.mu.Unlock()
		switch cmd.Keyword {
		case "PROTOCOLINFO":
			f.send("250-PROTOCOLINFO 1", "250-AUTH METHODS=NULL", `250-VERSION Tor="0.4.9.11"`, "250 OK")
		case "AUTHENTICATE":
			f.send("250 OK")
		case "SETEVENTS":
			f.send("250 OK")
			if strings.Contains(cmd.Args, "CONF_CHANGED") {
				close(f.ready)
			}
		case "GETINFO":
			f.getinfo(cmd.Args)
		case "GETCONF":
			f.getconf(strings.Fields(cmd.Args))
		default:
			f.send("510 Unrecognized command")
		}
	}
}

func (f *fakeTor) getinfo(args string) {
	var out []string
	for _, k := range strings.Fields(args) {
		switch k {
		case "events/names":
			out = append(out, "250-events/names=CIRC CONF_CHANGED")
		case "config/names":
			out = append(out, "250+config/names=")
			out = append(out, controltest.DataBlock(strings.Join(f.names, "\n"))...)
		case "config/defaults":
			out = append(out, "250+config/defaults=")
			out = append(out, controltest.DataBlock(`Opt00001 "1"`)...)
		default:
			f.send(fmt.Sprintf("552 Unrecognized key \"%s\"", k))
			return
		}
	}
	f.send(append(out, "250 OK")...)
}

func (f *fakeTor) getconf(keys []string) {
	f.mu.Lock()
	var bad []string
	for _, k := range keys {
		if f.refuse[k] {
			bad = append(bad, fmt.Sprintf("552 Unrecognized configuration key \"%s\"", k))
		}
	}
	var out []string
	if bad == nil {
		for _, k := range keys {
			vs := f.values[k]
			if len(vs) == 0 {
				out = append(out, "250-"+k)
			}
			for _, v := range vs {
				out = append(out, "250-"+k+"="+v)
			}
		}
		last := out[len(out)-1]
		out[len(out)-1] = "250 " + last[4:]
	} else {
		for i := range bad[:len(bad)-1] {
			bad[i] = strings.Replace(bad[i], "552 ", "552-", 1)
		}
		out = bad
	}
	f.mu.Unlock()
	f.send(out...)
}

func (f *fakeTor) set(key string, values ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[key] = values
}

func startFake(t *testing.T, f *fakeTor) *control.Conn {
	t.Helper()
	srv := controltest.NewServer(f)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := control.Connect(ctx, srv.Network, srv.Addr, nil)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func waitChanged(t *testing.T, c *TorConfig, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		ch := c.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLoadRoundTripsDoNotGrowWithOptions loads 5000 options through the
// fake server: the number of commands stays the same.
func TestLoadRoundTripsDoNotGrowWithOptions(t *testing.T) {
	for _, n := range []int{10, 5000} {
		f := newFakeTor(n)
		conn := startFake(t, f)
		ctx := context.Background()
		c, err := Load(ctx, conn, nil)
		require.NoError(t, err)
		assert.Equal(t, 4, f.commandCount(), "%d options: %v", n, f.commands)
		assert.Equal(t, []string{"GETINFO", "SETEVENTS", "GETINFO", "GETCONF"}, f.commands)
		assert.Equal(t, n+4, len(c.Schema().Names()))
		// An unknown type is kept, and its value read as a string.
		v := c.Get("Opt00006")
		assert.Equal(t, Type("Frobnicator"), v.Type)
		assert.Equal(t, "an unknown type's value", v.String())
		assert.Equal(t, []string{"a", "b"}, c.Get("opt00005").Lines())
		assert.False(t, c.Get("Opt00004").IsSet())
		assert.True(t, c.IsDefault("Opt00001"))
		require.NoError(t, c.Close())
	}
}

func TestLoadSkipsKeysTorRefuses(t *testing.T) {
	f := newFakeTor(20)
	f.refuse["Opt00003"] = true
	f.refuse["Opt00010"] = true
	c, err := Load(context.Background(), startFake(t, f), &LoadOptions{NoSync: true})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, []string{"GETINFO", "GETCONF", "GETCONF"}, f.commands)
	assert.False(t, c.Get("Opt00003").IsSet())
	assert.Equal(t, "1", c.Get("Opt00002").String())
}

// TestSyncResynchronises checks that dropped or malformed CONF_CHANGED
// events make the TorConfig read every value again.
func TestSyncResynchronises(t *testing.T) {
	f := newFakeTor(20)
	conn := startFake(t, f)
	c, err := Load(context.Background(), conn, nil)
	require.NoError(t, err)
	defer c.Close()
	<-f.ready

	// A malformed event (an unterminated quoted value).
	f.set("ContactInfo", "fresh")
	f.send("650-CONF_CHANGED", `650-ContactInfo="unterminated`, "650 OK")
	waitChanged(t, c, "resync after a malformed event", func() bool { return c.Get("ContactInfo").String() == "fresh" })

	// More events than the subscription buffers while the sync loop is
	// held up: some are dropped, so the final state is read again.
	c.mu.Lock()
	for i := 0; i < control.DefaultEventBuffer+50; i++ {
		f.send("650-CONF_CHANGED", fmt.Sprintf("650-ContactInfo=v%d", i), "650 OK")
	}
	f.set("ContactInfo", "final")
	// Make sure the events were read (and the excess dropped) before the
	// sync loop runs again.
	deadline := time.Now().Add(20 * time.Second)
	for c.sub.Dropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.NotZero(t, c.sub.Dropped())
	c.mu.Unlock()
	waitChanged(t, c, "resync after dropped events", func() bool { return c.Get("ContactInfo").String() == "final" })
}

// TestSyncEndsWithConnection checks that the sync goroutine ends when the
// connection does, and Close still works.
func TestSyncEndsWithConnection(t *testing.T) {
	f := newFakeTor(5)
	conn := startFake(t, f)
	c, err := Load(context.Background(), conn, nil)
	require.NoError(t, err)
	conn.Close()
	select {
	case <-c.syncDone:
	case <-time.After(10 * time.Second):
		t.Fatal("sync goroutine still running after the connection closed")
	}
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	err = c.Apply(context.Background())
	assert.ErrorIs(t, err, net.ErrClosed)
}

// TestApplyErrorNamesOption checks the parsing of tor's refusals.
func TestApplyErrorNamesOption(t *testing.T) {
	sent := []control.ConfEntry{{Key: "ContactInfo", Value: "x"}, {Key: "ConnLimit", Value: "abc"}, {Key: "Conn", Value: "y"}}
	cerr := &control.Error{Command: "SETCONF", Code: 513, Text: "Unacceptable option value: Could not parse ConnLimit: Integer abc is malformed"}
	err := applyError("SETCONF", cerr, sent)
	var aerr *ApplyError
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, []string{"ConnLimit"}, aerr.Options, "whole words only: Conn is not named")
	assert.ErrorIs(t, err, control.ErrUnrecognizedArgument)

	cerr = &control.Error{Command: "SETCONF", Code: 552, Text: "Unrecognized option: Unknown option 'NoSuchOpt'.  Failing."}
	err = applyError("SETCONF", cerr, []control.ConfEntry{{Key: "ContactInfo", Value: "x"}, {Key: "NoSuchOpt", Value: "1"}})
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, []string{"NoSuchOpt"}, aerr.Options)
	assert.Equal(t, 552, aerr.Code)
	assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
	assert.Contains(t, err.Error(), "552")

	cerr = &control.Error{Command: "SETCONF", Code: 553, Text: "Unable to set option: something"}
	err = applyError("SETCONF", cerr, sent)
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, []string{"ContactInfo", "ConnLimit", "Conn"}, aerr.Options, "no option named: all sent")

	err = applyError("SETCONF", fmt.Errorf("wrapped: %w", context.Canceled), sent)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, isApplyError(err))
}

func isApplyError(err error) bool {
	_, ok := err.(*ApplyError)
	return ok
}
