package torstate_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/torstate"
)

func TestBuildCircuitOutcomes(t *testing.T) {
	srv, _ := controltest.NewTranscriptServer(t, filepath.Join("..", "testdata", "torstate", "build.txt"))
	c, err := control.Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := torstate.New(ctx, c, nil)
	require.NoError(t, err, "a tor without consensus or GeoIP is fine")
	assert.Empty(t, st.Relays())

	// FAILED: a typed error with tor's reasons.
	_, err = st.BuildCircuit(ctx, []string{"$" + fpRelay0, fpRelay1})
	require.ErrorIs(t, err, torstate.ErrCircuitFailed)
	var ce *torstate.CircuitError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, torstate.CircuitError{ID: "8", Status: "FAILED", Reason: "DESTROYED", RemoteReason: "CHANNEL_CLOSED"}, *ce)
	assert.Contains(t, err.Error(), "DESTROYED")

	// BUILT, reported before the EXTENDCIRCUIT reply.
	circ, err := st.BuildCircuit(ctx, []string{fpRelay0})
	require.NoError(t, err)
	assert.Equal(t, "9", circ.ID)
	assert.Equal(t, "BUILT", circ.Status)
	assert.Equal(t, []string{fpRelay0}, circ.Fingerprints())
	assert.Equal(t, "relay0", circ.Path[0].Nickname, "a relay not in the consensus keeps its nickname")

	// The context ends while the circuit is being built: it is closed.
	sub := st.Subscribe(0)
	defer sub.Close()
	bctx, bcancel := context.WithCancel(ctx)
	go func() {
		for ch := range sub.Changes() {
			if ch.Circuit != nil && ch.Circuit.ID == "10" && ch.Circuit.Status == "LAUNCHED" {
				bcancel()
			}
		}
	}()
	_, err = st.BuildCircuit(bctx, nil)
	require.ErrorIs(t, err, context.Canceled)
	bcancel()
	require.NoError(t, st.Close())
	_, ok := st.Circuit("10")
	assert.False(t, ok)
	_, err = c.GetInfoValue(ctx, "version") // Close's SETEVENTS went out first
	require.NoError(t, err)
}

// A State whose event buffer overflows reads tor's state again and says so.
func TestResyncAfterLostEvents(t *testing.T) {
	srv := benchTor(syntheticConsensus(10))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	st, err := torstate.New(ctx, c, &torstate.Options{EventBuffer: 4})
	require.NoError(t, err)
	defer st.Close()
	sub := st.Subscribe(1 << 16)
	defer sub.Close()
	// 5,000 events: the lives of 500 circuits and streams, all closed at
	// the end.
	_, err = c.Request(ctx, "GETINFO bench/flood/5000")
	require.NoError(t, err)
	resynced := false
	for !resynced {
		select {
		case ch := <-sub.Changes():
			resynced = resynced || ch.Resynced
		case <-ctx.Done():
			t.Fatalf("no resync after lost events (%d applied)", st.EventsApplied())
		}
	}
	// The fake tor's snapshot is empty, and so is its final state.
	for len(st.Circuits())+len(st.Streams()) > 0 {
		select {
		case <-sub.Changes():
		case <-time.After(50 * time.Millisecond): // the last events may already be applied
		case <-ctx.Done():
			t.Fatalf("state not empty: %v %v", st.Circuits(), st.Streams())
		}
	}
	assert.Len(t, st.Relays(), 10)
}
