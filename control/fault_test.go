package control_test

// Fault tests. They run scaled down in "make test" and at full size with
// -stress ("make stress"): 1,000,000 events, 10,000 cancellations.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
)

var stress = flag.Bool("stress", false, "run the fault tests at full size (make stress)")

func scaled(full, small int) int {
	if *stress {
		return full
	}
	return small
}

// TestFaultEventFloodStalledSubscriber: a fake tor sends a flood of events
// while 16 goroutines issue commands; one subscriber never reads. Every
// command gets its own answer, the stalled subscriber's drops are counted
// exactly, a reading subscriber gets every event, and memory stays bounded
// by the buffers.
func TestFaultEventFloodStalledSubscriber(t *testing.T) {
	checkNoLeak(t)
	nEvents := scaled(1_000_000, 100_000)
	start := make(chan struct{})
	flooded := make(chan struct{})
	srv := controltest.NewUnixServer(controltest.HandlerFunc(func(s *controltest.Conn) {
		go func() { // the flood, interleaved with replies between whole replies
			<-start
			defer close(flooded)
			var b strings.Builder
			for i := 0; i < nEvents; {
				b.Reset()
				for j := 0; j < 100 && i < nEvents; j++ {
					fmt.Fprintf(&b, "650 CIRC %d BUILT $9C09D5CA6E2C5A7DC8D8B4B5FAD1F0A5B7E4D3C2~relay1 PURPOSE=GENERAL\r\n", i)
					i++
				}
				if _, err := s.Write([]byte(b.String())); err != nil {
					return
				}
			}
		}()
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			switch {
			case cmd.Line == "GETINFO events/names":
				s.Reply("250-events/names=CIRC STREAM", "250 OK")
			case cmd.Keyword == "GETINFO":
				s.Reply("250-"+cmd.Args+"="+cmd.Args, "250 OK")
			default:
				s.Reply("250 OK")
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := control.Dial(ctx, srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	stalled, err := c.SubscribeWith(ctx, control.SubscribeOptions{Buffer: 100}, "CIRC")
	require.NoError(t, err)
	reading, err := c.SubscribeWith(ctx, control.SubscribeOptions{Buffer: 4096}, "CIRC")
	require.NoError(t, err)
	var got atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for ev := range reading.Events() {
			if _, err := ev.Parsed(); err != nil {
				t.Error(err)
			}
			got.Add(1)
		}
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	close(start)
	var wg sync.WaitGroup
	var lat [16][]time.Duration
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-flooded:
					return
				default:
				}
				k := fmt.Sprintf("k%d-%d", g, i)
				t0 := time.Now()
				v, err := c.GetInfoValue(ctx, k)
				lat[g] = append(lat[g], time.Since(t0))
				if err != nil || v != k {
					t.Errorf("GETINFO %s: %q, %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// The flood is written; a last round trip is read after every event.
	_, err = c.GetInfoValue(ctx, "last")
	require.NoError(t, err)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	require.NotEmpty(t, all)
	t.Logf("%d events; %d commands during the flood: median %v, p99 %v, max %v; stalled subscriber dropped %d; heap %d MiB → %d MiB",
		nEvents, len(all), all[len(all)/2], all[len(all)*99/100], all[len(all)-1], stalled.Dropped(), before.HeapInuse>>20, after.HeapInuse>>20)
	assert.Equal(t, uint64(nEvents-100), stalled.Dropped(), "the stalled subscriber kept its first 100 and the rest were counted")
	assert.Len(t, stalled.Events(), 100)
	assert.Less(t, after.HeapInuse, before.HeapInuse+64<<20, "memory is bounded by the buffers, not the flood")
	c.Close()
	<-readDone
	assert.Equal(t, int64(nEvents)-int64(reading.Dropped()), got.Load())
}

// TestFaultCancellationsRealTor: commands (ADD_ONION among them) cancelled
// at random points against a real tor; afterwards the stream is in sync
// and every onion service a cancelled ADD_ONION created has been deleted.
func TestFaultCancellationsRealTor(t *testing.T) {
	checkNoLeak(t)
	tor := sharedTorFor(t)
	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	version, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	n := scaled(10_000, 1_000)
	const workers = 8 // cancelled commands sit in the queue and in flight next to others
	var cancelled, completed, added atomic.Int64
	var mu sync.Mutex
	var addedIDs []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for i := w; i < n; i += workers {
				cctx, ccancel := context.WithCancel(ctx)
				var timer *time.Timer
				if d := rng.IntN(4); d == 0 {
					ccancel() // before anything is written
				} else {
					timer = time.AfterFunc(time.Duration(rng.IntN(1500*d))*time.Microsecond, ccancel)
				}
				var err error
				switch kind := rng.IntN(3); kind {
				case 0:
					var v string
					v, err = c.GetInfoValue(cctx, "version")
					if err == nil && v != version {
						t.Errorf("out of sync: version = %q", v)
					}
				case 1:
					var r *control.AddOnionReply
					r, err = c.AddOnion(cctx, &control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80}}, Flags: []string{control.FlagDiscardPK}})
					if err == nil {
						added.Add(1)
						mu.Lock()
						addedIDs = append(addedIDs, r.ServiceID)
						mu.Unlock()
					}
				case 2:
					var e []control.ConfEntry
					e, err = c.GetConf(cctx, "SocksPort")
					if err == nil && (len(e) != 1 || e[0].Key != "SocksPort") {
						t.Errorf("out of sync: GETCONF SocksPort = %+v", e)
					}
				}
				if timer != nil {
					timer.Stop()
				}
				ccancel()
				switch {
				case err == nil:
					completed.Add(1)
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				default:
					t.Errorf("command: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	// Delete what completed ADD_ONIONs made; cancelled ones delete
	// themselves when their reply arrives.
	for _, id := range addedIDs {
		require.NoError(t, c.DelOnion(ctx, id))
	}
	// A round trip after every reply: every DEL_ONION a late ADD_ONION
	// reply caused has been sent before the next command.
	v, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.Equal(t, version, v)
	cur, err := c.GetInfoValue(ctx, "onions/current")
	require.NoError(t, err)
	t.Logf("%d commands: %d completed (%d ADD_ONION), %d cancelled; onions/current %q", n, completed.Load(), added.Load(), cancelled.Load(), cur)
	assert.Empty(t, cur, "a cancelled ADD_ONION left a service behind")
	assert.Positive(t, cancelled.Load())
	assert.Positive(t, completed.Load())
}

// TestFaultCloseRace: Close from 50 goroutines while 50 others issue
// commands: every call returns (an answer or net.ErrClosed), Close returns
// and nothing leaks.
func TestFaultCloseRace(t *testing.T) {
	checkNoLeak(t)
	srv := controltest.NewUnixServer(controltest.HandlerFunc(func(s *controltest.Conn) {
		for {
			cmd, err := s.ReadCommand()
			if err != nil {
				return
			}
			s.Reply("250-"+cmd.Args+"="+cmd.Args, "250 OK")
		}
	}))
	defer srv.Close()
	for round := 0; round < scaled(100, 10); round++ {
		ctx := context.Background()
		c, err := control.Dial(ctx, srv.Network, srv.Addr)
		require.NoError(t, err)
		var wg sync.WaitGroup
		go1 := make(chan struct{})
		for i := 0; i < 50; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-go1
				for j := 0; ; j++ {
					k := fmt.Sprint("k", i, "-", j)
					v, err := c.GetInfoValue(ctx, k)
					if err != nil {
						if !errors.Is(err, net.ErrClosed) {
							t.Errorf("GETINFO: %v", err)
						}
						return
					}
					if v != k {
						t.Errorf("GETINFO %s = %q", k, v)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				<-go1
				runtime.Gosched()
				assert.NoError(t, c.Close())
			}()
		}
		close(go1)
		wg.Wait()
		assert.ErrorIs(t, c.Err(), net.ErrClosed)
	}
}
