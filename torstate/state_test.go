package torstate_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/control/controltest"
	"github.com/gotorcon/tor/internal/leakcheck"
	"github.com/gotorcon/tor/torstate"
)

const (
	fpAuth0  = "AEC4DEB34DC9AA57012C87018FD3D635B7D28E07"
	fpRelay0 = "BD167379DBCACE710540F38B31E021EF49F0F2C0"
	fpRelay1 = "15908558F95E2C0269F3DBBFEDBA871DA6BF80BA"
	fpRelay2 = "4226A29B2F811496AF0F393CB9C31507E3A118A5"
	fpRelay3 = "E3C1235A92AE995AA31469BFFB02539E42792457"
)

// waitFor waits until cond holds, re-checking on every change.
func waitFor(t *testing.T, ctx context.Context, st *torstate.State, sub *torstate.Subscription, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-sub.Changes():
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; circuits %v, streams %v", what, ctx.Err(), st.Circuits(), st.Streams())
		}
	}
}

// TestSnapshotAndEvents: torstate.New against a fake tor playing
// testdata/torstate/snapshot.txt.
func TestSnapshotAndEvents(t *testing.T) {
	srv, _ := controltest.NewTranscriptServer(t, filepath.Join("..", "testdata", "torstate", "snapshot.txt"))
	c, err := control.Dial(context.Background(), srv.Network, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := torstate.New(ctx, c, nil)
	require.NoError(t, err)
	sub := st.Subscribe(0)
	waitFor(t, ctx, st, sub, "stream 10", func() bool { _, ok := st.Stream("10"); return ok })

	circs := st.Circuits()
	require.Len(t, circs, 1, "circuit 4 closed")
	c5 := circs[0]
	assert.Equal(t, "5", c5.ID)
	assert.Equal(t, "BUILT", c5.Status)
	assert.Equal(t, []string{fpRelay0, fpRelay1, fpRelay2}, c5.Fingerprints())
	assert.Equal(t, "CONTROLLER", c5.Purpose, "CIRC_MINOR changed the purpose")
	assert.Equal(t, time.Date(2026, 12, 1, 11, 12, 20, 916876000, time.UTC), c5.Created)
	// Path relays are the consensus's, with their country.
	assert.Equal(t, "193.0.0.1", c5.Path[0].Address)
	assert.Equal(t, "nl", c5.Path[0].Country)
	assert.Equal(t, "", c5.Path[1].Country, "private address: no country")
	assert.Equal(t, "relay0 relay1 relay2", c5.Path[0].Nickname+" "+c5.Path[1].Nickname+" "+c5.Path[2].Nickname)

	streams := st.Streams()
	require.Len(t, streams, 2)
	s9 := streams[0]
	assert.Equal(t, "9", s9.ID)
	assert.Equal(t, "SUCCEEDED", s9.Status, "REMAP does not change the status")
	assert.Equal(t, "5", s9.CircuitID)
	assert.Equal(t, "127.0.0.1:50838", s9.SourceAddr, "kept from the NEW event")
	assert.Equal(t, "USER", s9.Purpose)
	assert.Equal(t, "u1", s9.SOCKSUsername)
	assert.Equal(t, "p1", s9.SOCKSPassword)
	assert.Equal(t, "127.0.0.1", s9.TargetHost)
	assert.Equal(t, 80, s9.TargetPort)
	assert.Equal(t, "NEW", streams[1].Status)

	// The new consensus replaced the relays.
	relays := st.Relays()
	require.Len(t, relays, 4)
	_, ok := st.Relay(fpRelay2)
	assert.False(t, ok, "relay2 left the consensus")
	r3, ok := st.Relay("relay3")
	require.True(t, ok)
	assert.Equal(t, fpRelay3, r3.Fingerprint)
	assert.Equal(t, "us", r3.Country)
	assert.True(t, r3.HasFlag("Exit"))
	assert.Equal(t, int64(50), r3.Bandwidth)
	r0, _ := st.Relay("$" + fpRelay0)
	assert.Equal(t, int64(200), r0.Bandwidth)

	assert.Equal(t, []torstate.ORConn{
		{Target: "$" + fpAuth0 + "~auth0", Status: "CONNECTED"},
		{Target: "$" + fpRelay0 + "~relay0", Status: "CONNECTED", ID: "11"},
	}, st.ORConns())
	waitFor(t, ctx, st, sub, "two guards", func() bool { return len(st.Guards()) == 2 })
	assert.Equal(t, "never-connected", st.Guards()[1].Status)
	assert.Greater(t, st.EventsApplied(), uint64(10))

	require.NoError(t, st.Close())
	for range sub.Changes() { // Close closes subscriptions
	}
	<-st.Done()
	_, err = st.BuildCircuit(ctx, nil)
	assert.ErrorIs(t, err, torstate.ErrClosed)
	leakcheck.Check(t, 5*time.Second, leakcheck.CreatedBy("github.com/gotorcon/tor/torstate."))
	// The connection is still usable, and the SETEVENTS of Close went out
	// before this command.
	v, err := c.GetInfoValue(ctx, "version")
	require.NoError(t, err)
	assert.Equal(t, "0.4.9.11", v)
}
