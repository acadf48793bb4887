package onion

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTor is a scripted control port: it answers GETINFO events/names and
// SETEVENTS like tor, records every command, and lets the test answer
// ADD_ONION (and send events) itself.
type fakeTor struct {
	t   *testing.T
	srv *controltest.Server

	mu    sync.Mutex
	lines []string

	// addOnion answers an ADD_ONION; default: a fixed service.
	addOnion func(c *controltest.Conn, cmd *controltest.Command)
	// other answers any other command (default "250 OK").
	other func(c *controltest.Conn, cmd *controltest.Command) bool
}

const fakeID = "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad"

var fakeHSDirs = []string{
	"$AEC4DEB34DC9AA57012C87018FD3D635B7D28E07~auth0",
	"$1111111111111111111111111111111111111111~relay0",
	"$2222222222222222222222222222222222222222~relay1",
}

func newFakeTor(t *testing.T) *fakeTor {
	f := &fakeTor{t: t}
	f.srv = controltest.NewServer(controltest.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTor) dial(t *testing.T) *control.Conn {
	c, err := control.Dial(testCtx(t), f.srv.Network, f.srv.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fakeTor) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// count returns how many commands start with prefix.
func (f *fakeTor) count(prefix string) int {
	n := 0
	for _, l := range f.commands() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeTor) addOnionLine(t *testing.T) string {
	t.Helper()
	for _, l := range f.commands() {
		if strings.HasPrefix(l, "ADD_ONION ") {
			return l
		}
	}
	t.Fatal("no ADD_ONION sent")
	return ""
}

func (f *fakeTor) serve(c *controltest.Conn) {
	for {
		cmd, err := c.ReadCommand()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.lines = append(f.lines, cmd.Line)
		f.mu.Unlock()
		switch {
		case cmd.Line == "GETINFO events/names":
			c.Reply("250-events/names=CIRC STREAM HS_DESC HS_DESC_CONTENT STATUS_CLIENT", "250 OK")
		case cmd.Keyword == "ADD_ONION":
			if f.addOnion != nil {
				f.addOnion(c, cmd)
			} else {
				c.Reply("250-ServiceID="+fakeID, "250 OK")
			}
		default:
			if f.other == nil || !f.other(c, cmd) {
				c.Reply("250 OK")
			}
		}
	}
}

// Event lines as tor 0.4.9.11 writes them (see the probe in the package
// notes).
func created(id, desc string) string {
	return fmt.Sprintf("650 HS_DESC CREATED %s UNKNOWN UNKNOWN %s", id, desc)
}
func upload(id, hsdir, desc string) string {
	return fmt.Sprintf("650 HS_DESC UPLOAD %s UNKNOWN %s %s HSDIR_INDEX=AF9601E94E5C1BC4D24F8738A5E40B08180D21E8EC05B412633CAB4494806926", id, hsdir, desc)
}
func uploaded(id, hsdir string) string {
	return fmt.Sprintf("650 HS_DESC UPLOADED %s UNKNOWN %s", id, hsdir)
}
func failed(id, hsdir, reason string) string {
	return fmt.Sprintf("650 HS_DESC FAILED %s UNKNOWN %s REASON=%s", id, hsdir, reason)
}

const descA, descB = "LVLuhWmLYwgvJHTgbNiDUQG4PDyWcw7w41SrWNbBA88", "FBwgvhxHLlBzBAP983IFFOSlfSor/zqMPiPQuJcXnno"

// replyThen answers ADD_ONION with the service and then the given event
// lines, one write each.
func replyThen(reply []string, events ...string) func(c *controltest.Conn, cmd *controltest.Command) {
	return func(c *controltest.Conn, cmd *controltest.Command) {
		c.Reply(reply...)
		for _, e := range events {
			c.Reply(e)
		}
	}
}

var okReply = []string{"250-ServiceID=" + fakeID, "250 OK"}

func TestListenRequestBuilding(t *testing.T) {
	key, err := ReadServiceDir(torDir)
	require.NoError(t, err)
	client1, _ := NewClientKey(seq32())
	client2, _ := GenerateClientKey(nil)

	cases := []struct {
		name string
		lc   ListenConfig
		want string // regexp of the ADD_ONION line; LOCAL stands for the local target
	}{
		{"default", ListenConfig{},
			`^ADD_ONION NEW:ED25519-V3 POW Port=80,LOCAL$`},
		{"key", ListenConfig{Key: key},
			`^ADD_ONION ED25519-V3:` + regexp.QuoteMeta(key.blobData()) + ` POW Port=80,LOCAL$`},
		{"ports", ListenConfig{Ports: []int{80, 443, 8080}},
			`^ADD_ONION NEW:ED25519-V3 POW Port=80,LOCAL Port=443,LOCAL Port=8080,LOCAL$`},
		{"targets", ListenConfig{Ports: []int{80}, Targets: []control.OnionPort{{VirtPort: 22, Target: "127.0.0.1:2222"}, {VirtPort: 25, Target: "unix:/run/x.sock"}}},
			`^ADD_ONION NEW:ED25519-V3 POW Port=80,LOCAL Port=22,127.0.0.1:2222 Port=25,unix:/run/x.sock$`},
		{"targets only", ListenConfig{Targets: []control.OnionPort{{VirtPort: 443, Target: "[::1]:8443"}}},
			`^ADD_ONION NEW:ED25519-V3 POW Port=443,\[::1\]:8443$`},
		{"flags", ListenConfig{DiscardKey: true, Detach: true, NonAnonymous: true, MaxStreams: 7, MaxStreamsCloseCircuit: true},
			`^ADD_ONION NEW:ED25519-V3 Flags=DiscardPK,Detach,NonAnonymous,MaxStreamsCloseCircuit MaxStreams=7 POW Port=80,LOCAL$`},
		{"pow off", ListenConfig{PoW: PoW{Mode: PoWOff}},
			`^ADD_ONION NEW:ED25519-V3 Port=80,LOCAL$`},
		{"pow tuned", ListenConfig{PoW: PoW{Mode: PoWOn, QueueRate: 10, QueueBurst: 20}},
			`^ADD_ONION NEW:ED25519-V3 PoWDefensesEnabled=1 PoWQueueRate=10 PoWQueueBurst=20 Port=80,LOCAL$`},
		{"client auth", ListenConfig{ClientAuth: []ClientPublicKey{client1.Public(), client2.Public()}},
			`^ADD_ONION NEW:ED25519-V3 Flags=V3Auth POW Port=80,LOCAL ClientAuthV3=` + client1.Public().String() + ` ClientAuthV3=` + client2.Public().String() + `$`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeTor(t)
			if c.lc.Key != nil {
				f.addOnion = replyThen([]string{"250-ServiceID=" + key.ServiceID(), "250 OK"})
			}
			conn := f.dial(t)
			lc := c.lc
			lc.Wait = WaitNone
			l, err := lc.Listen(testCtx(t), conn)
			require.NoError(t, err)
			line := f.addOnionLine(t)
			want := strings.ReplaceAll(c.want, "POW", "PoWDefensesEnabled=1")
			if la := l.LocalAddr(); la != nil {
				want = strings.ReplaceAll(want, "LOCAL", regexp.QuoteMeta(la.String()))
				assert.True(t, strings.HasPrefix(la.String(), "127.0.0.1:"), la.String())
			}
			assert.Regexp(t, want, line)
			assert.Equal(t, 0, f.count("SETEVENTS"), "WaitNone does not subscribe")
			require.NoError(t, l.Close())
			if c.lc.Detach {
				assert.Equal(t, 0, f.count("DEL_ONION"))
			} else {
				assert.Equal(t, 1, f.count("DEL_ONION "+l.ServiceID()))
			}
		})
	}
}

func TestListenUnixLocalSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("tor takes unix targets on unix-like systems only")
	}
	f := newFakeTor(t)
	conn := f.dial(t)
	l, err := (&ListenConfig{LocalNetwork: "unix", Ports: []int{80, 81}, Wait: WaitNone}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	path := l.LocalAddr().String()
	assert.Equal(t, "unix", l.LocalAddr().Network())
	assert.Equal(t, "ADD_ONION NEW:ED25519-V3 PoWDefensesEnabled=1 Port=80,unix:"+path+" Port=81,unix:"+path, f.addOnionLine(t))
	fi, err := os.Stat(path[:strings.LastIndexByte(path, '/')])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	go func() {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := l.Accept()
	require.NoError(t, err)
	b, _ := io.ReadAll(c)
	assert.Equal(t, "x", string(b))
	c.Close()
	require.NoError(t, l.Close())
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket's directory is removed")
}

func TestListenLocalListener(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	l, err := (&ListenConfig{LocalListener: ln, Wait: WaitNone}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("ADD_ONION NEW:ED25519-V3 PoWDefensesEnabled=1 Port=80,127.0.0.1:%d", port), f.addOnionLine(t))
	require.NoError(t, l.Close())
	_, err = ln.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "the Listener owns the local listener")
}

func TestListenBadConfig(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	for name, lc := range map[string]ListenConfig{
		"port 0":         {Ports: []int{0}},
		"port 65536":     {Ports: []int{65536}},
		"duplicate":      {Ports: []int{80}, Targets: []control.OnionPort{{VirtPort: 80, Target: "1"}}},
		"empty target":   {Targets: []control.OnionPort{{VirtPort: 81}}},
		"target space":   {Targets: []control.OnionPort{{VirtPort: 81, Target: "a b"}}},
		"max streams":    {MaxStreams: 65536},
		"negative":       {MaxStreams: -1},
		"wait":           {Wait: 9},
		"local network":  {LocalNetwork: "udp"},
		"target newline": {Targets: []control.OnionPort{{VirtPort: 81, Target: "1\r\nSIGNAL HALT"}}},
	} {
		_, err := lc.Listen(testCtx(t), conn)
		assert.Error(t, err, name)
	}
	assert.Equal(t, 0, f.count("ADD_ONION"), "nothing reaches tor")
	_, err := listenPorts(testCtx(t), nil)
	assert.Error(t, err)
}

func TestListenReplyParsing(t *testing.T) {
	t.Run("new key returned", func(t *testing.T) {
		k, _ := GenerateKey(nil)
		f := newFakeTor(t)
		f.addOnion = replyThen([]string{"250-ServiceID=" + k.ServiceID(), "250-PrivateKey=" + k.Blob(), "250 OK"})
		l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		defer l.Close()
		assert.True(t, k.Equal(l.Key()))
		assert.Equal(t, k.ServiceID(), l.ServiceID())
		assert.Equal(t, k.Hostname()+":80", l.Addr().String())
		assert.Equal(t, "onion", l.Addr().Network())
		assert.Equal(t, k.Hostname(), l.Hostname())
	})
	t.Run("discarded key", func(t *testing.T) {
		f := newFakeTor(t)
		l, err := (&ListenConfig{Wait: WaitNone, DiscardKey: true, Ports: []int{443, 80}}).Listen(testCtx(t), f.dial(t))
		require.NoError(t, err)
		defer l.Close()
		assert.Nil(t, l.Key())
		assert.Equal(t, fakeID+".onion:443", l.Addr().String())
		assert.Equal(t, []int{443, 80}, l.Ports())
	})
	bad := map[string][]string{
		"key of another service": {"250-ServiceID=" + fakeID, "250-PrivateKey=ED25519-V3:aJ5vPTsTth2+SUWAS8vILW8Rkz4SqF7TMAWE9yoEOUEUc2m39AYbrb5uKDnHTs7H+S8bGg1S82nwWI32jugYBA==", "250 OK"},
		"bad key":                {"250-ServiceID=" + fakeID, "250-PrivateKey=ED25519-V3:AAAA", "250 OK"},
		"bad service id":         {"250-ServiceID=" + strings.Repeat("a", 56), "250 OK"},
	}
	for name, reply := range bad {
		t.Run(name, func(t *testing.T) {
			f := newFakeTor(t)
			f.addOnion = replyThen(reply)
			_, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), f.dial(t))
			require.Error(t, err)
			assert.Equal(t, 1, f.count("DEL_ONION"), "the service tor created is removed")
		})
	}
	t.Run("supplied key, other service", func(t *testing.T) {
		k, _ := GenerateKey(nil)
		f := newFakeTor(t)
		_, err := (&ListenConfig{Wait: WaitNone, Key: k}).Listen(testCtx(t), f.dial(t))
		assert.ErrorContains(t, err, k.ServiceID())
		assert.Equal(t, 1, f.count("DEL_ONION "+fakeID))
	})
}

func TestListenTorErrors(t *testing.T) {
	for _, c := range []struct {
		reply string
		nonAn bool
		want  error
		text  string
	}{
		{"512 Tor is in anonymous hidden service mode", true, ErrAnonymityMode, "HiddenServiceSingleHopMode 1"},
		{"512 Tor is in non-anonymous hidden service mode", false, ErrAnonymityMode, "set NonAnonymous"},
		{"550 Onion address collision", false, ErrAddressInUse, "collision"},
		{"551 Failed to add Onion Service", false, control.ErrInternal, "Failed to add"},
	} {
		f := newFakeTor(t)
		f.addOnion = replyThen([]string{c.reply})
		_, err := (&ListenConfig{NonAnonymous: c.nonAn}).Listen(testCtx(t), f.dial(t))
		require.Error(t, err, c.reply)
		assert.ErrorIs(t, err, c.want, c.reply)
		assert.ErrorContains(t, err, c.text)
		var ce *control.Error
		assert.ErrorAs(t, err, &ce, "tor's error is kept")
		assert.Equal(t, 0, f.count("DEL_ONION"))
		assert.Equal(t, 1, f.count("SETEVENTS HS_DESC"), "subscribed before ADD_ONION")
	}
}

// listenAsync runs Listen in the background.
func listenAsync(ctx context.Context, lc *ListenConfig, conn *control.Conn) (<-chan *Listener, <-chan error) {
	lch, ech := make(chan *Listener, 1), make(chan error, 1)
	go func() {
		l, err := lc.Listen(ctx, conn)
		lch <- l
		ech <- err
	}()
	return lch, ech
}

func TestListenWaitPublished(t *testing.T) {
	f := newFakeTor(t)
	release := make(chan struct{})
	f.addOnion = func(c *controltest.Conn, cmd *controltest.Command) {
		// Events may precede the reply: Listen subscribed first.
		c.Reply(created(fakeID, descA), created(fakeID, descB))
		c.Reply(okReply...)
		c.Reply(upload(fakeID, fakeHSDirs[0], descA))
		c.Reply(upload(fakeID, fakeHSDirs[0], descB))            // same HSDir, other descriptor
		c.Reply(upload("aaaa"+fakeID[4:], fakeHSDirs[1], descA)) // another service
		c.Reply(uploaded("aaaa"+fakeID[4:], fakeHSDirs[1]))
		c.Reply(uploaded(fakeID, fakeHSDirs[0]))
		<-release
		c.Reply(uploaded(fakeID, fakeHSDirs[0]))
	}
	var mu sync.Mutex
	var seen []Progress
	lc := &ListenConfig{Progress: func(p Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}}
	lch, ech := listenAsync(testCtx(t), lc, f.dial(t))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 5 })
	select {
	case <-ech:
		t.Fatal("Listen returned after the first UPLOADED although an upload was pending")
	default:
	}
	close(release)
	require.NoError(t, <-ech)
	l := <-lch
	defer l.Close()

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 6)
	var actions []string
	for _, p := range seen {
		actions = append(actions, p.Event.Action)
		assert.Equal(t, fakeID, p.ServiceID)
	}
	assert.Equal(t, []string{"CREATED", "CREATED", "UPLOAD", "UPLOAD", "UPLOADED", "UPLOADED"}, actions)
	last := seen[5]
	assert.Equal(t, Progress{ServiceID: fakeID, Event: last.Event, Descriptors: 2, Uploads: 2, Uploaded: 2}, last)
	assert.Equal(t, 0, last.Pending())
	assert.Equal(t, 1, seen[4].Pending())
	cmds := f.commands()
	assert.Equal(t, "SETEVENTS HS_DESC", cmds[1])
	assert.True(t, strings.HasPrefix(cmds[2], "ADD_ONION "))
}

// A descriptor tor built but has not started uploading keeps Listen
// waiting even when every started upload has finished.
func TestListenWaitsForEveryDescriptor(t *testing.T) {
	f := newFakeTor(t)
	release := make(chan struct{})
	f.addOnion = func(c *controltest.Conn, cmd *controltest.Command) {
		c.Reply(okReply...)
		c.Reply(created(fakeID, descA), created(fakeID, descB),
			upload(fakeID, fakeHSDirs[0], descA), uploaded(fakeID, fakeHSDirs[0]))
		<-release
		c.Reply(upload(fakeID, fakeHSDirs[1], descB), failed(fakeID, fakeHSDirs[1], "UPLOAD_REJECTED"))
	}
	var n int
	var mu sync.Mutex
	lc := &ListenConfig{Progress: func(Progress) { mu.Lock(); n++; mu.Unlock() }}
	lch, ech := listenAsync(testCtx(t), lc, f.dial(t))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return n == 4 })
	select {
	case <-ech:
		t.Fatal("Listen returned before the second descriptor was uploaded")
	default:
	}
	close(release)
	require.NoError(t, <-ech, "one success is enough once everything has finished")
	(<-lch).Close()
}

func TestListenWaitFirstUpload(t *testing.T) {
	f := newFakeTor(t)
	f.addOnion = func(c *controltest.Conn, cmd *controltest.Command) {
		c.Reply(okReply...)
		c.Reply(created(fakeID, descA), created(fakeID, descB),
			upload(fakeID, fakeHSDirs[0], descA), upload(fakeID, fakeHSDirs[1], descA),
			failed(fakeID, fakeHSDirs[1], "UPLOAD_REJECTED"), uploaded(fakeID, fakeHSDirs[0]))
		// Nothing more: WaitPublished would wait for descB.
	}
	var last Progress
	l, err := (&ListenConfig{Wait: WaitFirstUpload, Progress: func(p Progress) { last = p }}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	defer l.Close()
	assert.Equal(t, 1, last.Uploaded)
	assert.Equal(t, 1, last.Failed)
}

func TestListenAllUploadsFailed(t *testing.T) {
	f := newFakeTor(t)
	f.addOnion = func(c *controltest.Conn, cmd *controltest.Command) {
		c.Reply(okReply...)
		c.Reply(created(fakeID, descA), created(fakeID, descB))
		for _, h := range fakeHSDirs {
			c.Reply(upload(fakeID, h, descA), upload(fakeID, h, descB))
		}
		for i, h := range fakeHSDirs {
			reason := "UPLOAD_REJECTED"
			if i == 2 {
				reason = "UNEXPECTED"
			}
			c.Reply(failed(fakeID, h, reason), failed(fakeID, h, reason))
		}
	}
	for _, mode := range []Wait{WaitPublished, WaitFirstUpload} {
		start := time.Now()
		_, err := (&ListenConfig{Wait: mode}).Listen(testCtx(t), f.dial(t))
		require.Error(t, err)
		assert.Less(t, time.Since(start), 5*time.Second, "fails fast, without waiting for a timeout")
		assert.ErrorIs(t, err, ErrAllUploadsFailed)
		assert.ErrorIs(t, err, ErrPublish)
		var pe *PublishError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, fakeID, pe.ServiceID)
		assert.Equal(t, 6, pe.Progress.Uploads)
		assert.Equal(t, 6, pe.Progress.Failed)
		assert.Equal(t, []string{"UPLOAD_REJECTED", "UNEXPECTED"}, pe.Reasons)
		assert.ErrorContains(t, err, "UPLOAD_REJECTED")
	}
	assert.Equal(t, 2, f.count("DEL_ONION "+fakeID), "failed services are removed")
}

func TestListenPublishTimeout(t *testing.T) {
	f := newFakeTor(t)
	f.addOnion = replyThen(okReply, created(fakeID, descA), upload(fakeID, fakeHSDirs[0], descA))

	start := time.Now()
	_, err := (&ListenConfig{PublishTimeout: 200 * time.Millisecond, Detach: true}).Listen(testCtx(t), f.dial(t))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, ErrPublish)
	var pe *PublishError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Progress.Uploads)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, 1, f.count("DEL_ONION "+fakeID), "removed even though detached")

	// The context's deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = (&ListenConfig{}).Listen(ctx, f.dial(t))
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// So does cancellation.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = (&ListenConfig{}).Listen(ctx, f.dial(t))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 3, f.count("DEL_ONION "+fakeID))
}

// Upload events that lack the address (older tors) are matched by HSDir.
func TestListenUnknownAddressEvents(t *testing.T) {
	f := newFakeTor(t)
	f.addOnion = replyThen(okReply,
		created(fakeID, descA),
		upload(fakeID, fakeHSDirs[0], descA),
		uploaded("UNKNOWN", fakeHSDirs[1]), // not one of ours
		uploaded("UNKNOWN", fakeHSDirs[0]))
	var last Progress
	l, err := (&ListenConfig{Progress: func(p Progress) { last = p }}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	l.Close()
	assert.Equal(t, 1, last.Uploaded)
}

func TestListenConnectionLostWhileWaiting(t *testing.T) {
	f := newFakeTor(t)
	f.addOnion = func(c *controltest.Conn, cmd *controltest.Command) {
		c.Reply(okReply...)
		c.Reply(created(fakeID, descA))
		c.Close()
	}
	_, err := (&ListenConfig{}).Listen(testCtx(t), f.dial(t))
	assert.ErrorIs(t, err, ErrPublish)
	assert.ErrorIs(t, err, net.ErrClosed)
}

func TestListenerAcceptAndClose(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	f.addOnion = replyThen(okReply, created(fakeID, descA), upload(fakeID, fakeHSDirs[0], descA), uploaded(fakeID, fakeHSDirs[0]))
	l, err := listenPorts(testCtx(t), conn, 80, 8080)
	require.NoError(t, err)
	assert.Equal(t, fakeID+".onion:80", l.Addr().String())
	assert.Equal(t, fakeID, l.ServiceID())

	// Connections tor forwards to the local socket come out of Accept.
	const n = 5
	go func() {
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", l.LocalAddr().String())
			if err != nil {
				return
			}
			fmt.Fprintf(c, "conn %d", i)
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := l.Accept()
		require.NoError(t, err)
		b, _ := io.ReadAll(c)
		assert.Equal(t, fmt.Sprintf("conn %d", i), string(b))
		c.Close()
	}

	require.NotEmpty(t, leakcheck.Goroutines(leakcheck.Running("onion.(*Listener).watch")), "the watch runs while the listener is open")

	// Close unblocks a pending Accept with net.ErrClosed and removes the
	// service once.
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	require.NoError(t, l.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "accept", oe.Op)
	case <-time.After(10 * time.Second):
		t.Fatal("Accept not unblocked by Close")
	}
	require.NoError(t, l.Close(), "idempotent")
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Equal(t, 1, f.count("DEL_ONION "+fakeID))
	leakcheck.Check(t, 3*time.Second, leakcheck.Running("onion.(*Listener).watch"))
	// The control connection is still usable.
	_, err = conn.Request(testCtx(t), "GETINFO version") // the fake answers 250 OK
	assert.NoError(t, err)
}

func TestListenerTargetsOnly(t *testing.T) {
	f := newFakeTor(t)
	l, err := (&ListenConfig{Wait: WaitNone, Targets: []control.OnionPort{{VirtPort: 22, Target: "2222"}}}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	assert.Nil(t, l.LocalAddr())
	assert.Equal(t, fakeID+".onion:22", l.Addr().String())
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	require.NoError(t, l.Close())
	assert.ErrorIs(t, <-errc, net.ErrClosed)
}

func TestListenerControlConnectionLost(t *testing.T) {
	f := newFakeTor(t)
	conn := f.dial(t)
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	f.srv.CloseClients() // tor died: the service is gone
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.ErrorContains(t, err, "control connection")
	case <-time.After(10 * time.Second):
		t.Fatal("Accept not unblocked when the control connection ended")
	}
	assert.NoError(t, l.Close(), "nothing left to remove")
	assert.Equal(t, 0, f.count("DEL_ONION"))

	// A detached service does not depend on the connection.
	f2 := newFakeTor(t)
	conn2 := f2.dial(t)
	l2, err := (&ListenConfig{Wait: WaitNone, Detach: true}).Listen(testCtx(t), conn2)
	require.NoError(t, err)
	f2.srv.CloseClients()
	<-conn2.Done()
	go func() {
		c, err := net.Dial("tcp", l2.LocalAddr().String())
		if err == nil {
			c.Close()
		}
	}()
	c, err := l2.Accept()
	require.NoError(t, err)
	c.Close()
	require.NoError(t, l2.Close())
}

func TestListenDelOnionFailure(t *testing.T) {
	f := newFakeTor(t)
	f.other = func(c *controltest.Conn, cmd *controltest.Command) bool {
		if cmd.Keyword == "DEL_ONION" {
			c.Reply("552 Unknown Onion Service id")
			return true
		}
		return false
	}
	l, err := (&ListenConfig{Wait: WaitNone}).Listen(testCtx(t), f.dial(t))
	require.NoError(t, err)
	err = l.Close()
	assert.ErrorIs(t, err, control.ErrUnrecognizedEntity)
	assert.Equal(t, err, l.Close(), "the same result again")
}

func TestClientAuthCommands(t *testing.T) {
	f := newFakeTor(t)
	k, _ := NewClientKey(seq32())
	f.other = func(c *controltest.Conn, cmd *controltest.Command) bool {
		switch {
		case cmd.Keyword == "ONION_CLIENT_AUTH_ADD" && strings.Contains(cmd.Args, "Permanent"):
			c.Reply(`553 Unable to store creds for "` + fakeID + `"`)
		case cmd.Keyword == "ONION_CLIENT_AUTH_ADD" && strings.Contains(cmd.Args, "ClientName=again"):
			c.Reply("251 Client for onion existed and replaced")
		case cmd.Keyword == "ONION_CLIENT_AUTH_ADD" && strings.Contains(cmd.Args, "ClientName=decrypts"):
			c.Reply("252 Registered client and decrypted desc")
		case cmd.Line == "ONION_CLIENT_AUTH_REMOVE "+fakeID:
			c.Reply("250 OK")
		case cmd.Keyword == "ONION_CLIENT_AUTH_REMOVE":
			c.Reply(`251 No credentials for "` + cmd.Args + `"`)
		case cmd.Keyword == "ONION_CLIENT_AUTH_VIEW":
			c.Reply("250-ONION_CLIENT_AUTH_VIEW",
				"250-CLIENT "+fakeID+" x25519:"+k.Base64()+" Flags=Permanent ClientName=bob",
				"250-CLIENT 25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid x25519:"+k.Base64(),
				"250 OK")
		default:
			return false
		}
		return true
	}
	conn := f.dial(t)
	ctx := testCtx(t)

	res, err := AddClientAuth(ctx, conn, ClientAuth{Address: fakeID + ".onion", Key: k, Name: "bob"})
	require.NoError(t, err)
	assert.Equal(t, ClientAuthAdded, res)
	res, err = AddClientAuth(ctx, conn, ClientAuth{Address: fakeID, Key: k, Name: "again"})
	require.NoError(t, err)
	assert.Equal(t, ClientAuthReplaced, res)
	res, err = AddClientAuth(ctx, conn, ClientAuth{Address: fakeID, Key: k, Name: "decrypts"})
	require.NoError(t, err)
	assert.Equal(t, ClientAuthDecrypted, res)
	assert.Equal(t, "decrypted", res.String())
	_, err = AddClientAuth(ctx, conn, ClientAuth{Address: fakeID, Key: k, Permanent: true})
	assert.ErrorIs(t, err, ErrClientAuthStore)
	_, err = AddClientAuth(ctx, conn, ClientAuth{Address: "bad", Key: k})
	assert.ErrorIs(t, err, ErrInvalidAddress)
	_, err = AddClientAuth(ctx, conn, ClientAuth{Address: fakeID})
	assert.Error(t, err)

	removed, err := RemoveClientAuth(ctx, conn, fakeID+".onion")
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = RemoveClientAuth(ctx, conn, "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid")
	require.NoError(t, err)
	assert.False(t, removed)

	list, err := ClientAuths(ctx, conn, "")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, fakeID, list[0].Address)
	assert.True(t, k.Equal(list[0].Key))
	assert.Equal(t, "bob", list[0].Name)
	assert.True(t, list[0].Permanent)
	assert.False(t, list[1].Permanent)
	_, err = ClientAuths(ctx, conn, fakeID+".onion")
	require.NoError(t, err)

	assert.Equal(t, []string{
		"ONION_CLIENT_AUTH_ADD " + fakeID + " x25519:" + k.Base64() + " ClientName=bob",
		"ONION_CLIENT_AUTH_ADD " + fakeID + " x25519:" + k.Base64() + " ClientName=again",
		"ONION_CLIENT_AUTH_ADD " + fakeID + " x25519:" + k.Base64() + " ClientName=decrypts",
		"ONION_CLIENT_AUTH_ADD " + fakeID + " x25519:" + k.Base64() + " Flags=Permanent",
		"ONION_CLIENT_AUTH_REMOVE " + fakeID,
		"ONION_CLIENT_AUTH_REMOVE 25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid",
		"ONION_CLIENT_AUTH_VIEW",
		"ONION_CLIENT_AUTH_VIEW " + fakeID,
	}, f.commands())
}

// TestDirConfigRequests checks the commands DirConfig sends, against a
// fake tor that answers config/names and config/defaults with tor
// 0.4.9.11's own lists and already runs two on-disk services, one of them
// in the directory the test uses (as if saved in the torrc).
func TestDirConfigRequests(t *testing.T) {
	dir := t.TempDir() + "/svc dir" // a space: the value must be quoted
	k, err := GenerateKey(nil)
	require.NoError(t, err)

	f, _ := newDirFakeTor(t, dir, nil)
	conn := f.dial(t)
	ctx := testCtx(t)

	l, err := (&DirConfig{Dir: dir, Key: k, Ports: []int{80, 8080}, MaxStreams: 5, MaxStreamsCloseCircuit: true,
		Targets: []control.OnionPort{{VirtPort: 22, Target: "127.0.0.1:2222"}}, Wait: WaitNone}).Listen(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, k.ServiceID(), l.ServiceID(), "the key we wrote into the directory")
	got, err := ReadServiceDir(dir)
	require.NoError(t, err)
	assert.True(t, k.Equal(got))
	local := l.LocalAddr().String()

	var setconf []string
	for _, line := range f.commands() {
		if strings.HasPrefix(line, "SETCONF ") {
			setconf = append(setconf, line)
		}
	}
	require.Len(t, setconf, 1)
	q := control.QuoteCString
	assert.Equal(t, "SETCONF HiddenServiceDir="+q("/var/lib/other")+" HiddenServicePort="+q("22 127.0.0.1:22")+
		" HiddenServiceDir="+q(dir)+" HiddenServiceVersion="+q("3")+
		" HiddenServicePort="+q("80 "+local)+" HiddenServicePort="+q("8080 "+local)+" HiddenServicePort="+q("22 127.0.0.1:2222")+
		" HiddenServiceMaxStreams="+q("5")+" HiddenServiceMaxStreamsCloseCircuit="+q("1")+
		" HiddenServicePoWDefensesEnabled="+q("1"), setconf[0],
		"the other service kept, ours replacing the old entry of its directory")

	require.NoError(t, l.Close())
	setconf = setconf[:0]
	for _, line := range f.commands() {
		if strings.HasPrefix(line, "SETCONF ") {
			setconf = append(setconf, line)
		}
	}
	require.Len(t, setconf, 2)
	assert.Equal(t, "SETCONF HiddenServiceDir="+q("/var/lib/other")+" HiddenServicePort="+q("22 127.0.0.1:22"), setconf[1], "Close removes only ours")
}

// newDirFakeTor is a fake tor for DirConfig: it answers config/names and
// config/defaults with tor 0.4.9.11's lists, GETCONF HiddenServiceOptions
// with its current on-disk services (at first one in /var/lib/other and
// one in dir), and SETCONF by taking the services sent. If hold is not
// nil, each SETCONF is answered only once hold yields. services returns
// the current list.
func newDirFakeTor(t *testing.T, dir string, hold <-chan struct{}) (f *fakeTor, services func() []string) {
	return newDirFakeTorNames(t, dir, hold, nil)
}

// newDirFakeTorNames is newDirFakeTor whose config/names leaves out the
// options for which drop returns true (an older tor).
func newDirFakeTorNames(t *testing.T, dir string, hold <-chan struct{}, drop func(name string) bool) (f *fakeTor, services func() []string) {
	names, err := os.ReadFile("../testdata/config/names-0.4.9.11.txt")
	require.NoError(t, err)
	if drop != nil {
		var kept []string
		for _, line := range strings.Split(string(names), "\n") {
			if name, _, _ := strings.Cut(line, " "); !drop(name) {
				kept = append(kept, line)
			}
		}
		names = []byte(strings.Join(kept, "\n"))
	}
	defaults, err := os.ReadFile("../testdata/config/defaults-0.4.9.11.txt")
	require.NoError(t, err)
	var mu sync.Mutex
	current := []string{
		"250-HiddenServiceDir=/var/lib/other",
		"250-HiddenServicePort=22 127.0.0.1:22",
		"250-HiddenServiceDir=" + dir,
		"250-HiddenServicePort=80 127.0.0.1:1",
	}
	f = newFakeTor(t)
	f.other = func(c *controltest.Conn, cmd *controltest.Command) bool {
		switch {
		case cmd.Line == "GETINFO config/names config/defaults":
			c.Reply(append(append(append([]string{"250+config/names="}, controltest.DataBlock(strings.TrimSpace(string(names)))...),
				append([]string{"250+config/defaults="}, controltest.DataBlock(strings.TrimSpace(string(defaults)))...)...), "250 OK")...)
		case cmd.Keyword == "GETCONF":
			var out []string
			for _, key := range strings.Fields(cmd.Args) {
				if key == "HiddenServiceOptions" {
					mu.Lock()
					out = append(out, current...)
					mu.Unlock()
				} else {
					out = append(out, "250-"+key)
				}
			}
			if len(out) == 0 {
				out = []string{"250-HiddenServiceOptions"}
			}
			out[len(out)-1] = "250 " + out[len(out)-1][4:]
			c.Reply(out...)
		case cmd.Keyword == "SETCONF":
			mu.Lock()
			current = nil
			for _, f := range regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`).FindAllStringSubmatch(cmd.Args, -1) {
				v, _ := control.UnquoteCString(f[2])
				if !strings.HasPrefix(f[2], `"`) {
					v = f[2]
				}
				current = append(current, "250-"+f[1]+"="+v)
			}
			mu.Unlock()
			if hold != nil {
				<-hold
			}
			c.Reply("250 OK")
		default:
			return false
		}
		return true
	}
	return f, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(current)
	}
}

// TestDirConfigCancelledAfterSetconf: when ctx ends while tor has the
// SETCONF but has not answered, Listen fails and removes the service again
// once tor answers; nothing stays configured.
func TestDirConfigCancelledAfterSetconf(t *testing.T) {
	dir := t.TempDir() + "/svc"
	hold := make(chan struct{}, 2)
	f, services := newDirFakeTor(t, dir, hold)
	conn := f.dial(t)
	k, err := GenerateKey(nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		for f.count("SETCONF") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		hold <- struct{}{} // the first SETCONF is answered after the cancel
		hold <- struct{}{} // the removal
	}()
	_, err = (&DirConfig{Dir: dir, Key: k, Wait: WaitNone}).Listen(ctx, conn)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 2, f.count("SETCONF"), "the service was removed again")
	assert.Equal(t, []string{"250-HiddenServiceDir=/var/lib/other", "250-HiddenServicePort=22 127.0.0.1:22"}, services())

	// The directory is free again for a new Listener.
	hold <- struct{}{}
	l, err := (&DirConfig{Dir: dir, Wait: WaitNone}).Listen(testCtx(t), conn)
	require.NoError(t, err)
	hold <- struct{}{}
	require.NoError(t, l.Close())
}

// listenPorts publishes an ephemeral service on the given virtual ports
// with ListenConfig's defaults.
func listenPorts(ctx context.Context, conn *control.Conn, ports ...int) (*Listener, error) {
	return (&ListenConfig{Ports: ports}).Listen(ctx, conn)
}
