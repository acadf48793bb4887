//go:build unix

package control_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
)

var controlAddOnion = control.AddOnionRequest{Ports: []control.OnionPort{{VirtPort: 80}}, Flags: []string{control.FlagDiscardPK}}

// TestFaultTorKilled: tor is SIGKILLed while 32 goroutines have commands
// in flight (ADD_ONION among them) and a subscription is open. Every call
// returns an error matching net.ErrClosed, the subscription's channel is
// closed, Done is closed with the cause, and no goroutine is left behind.
func TestFaultTorKilled(t *testing.T) {
	checkNoLeak(t)
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := c.Subscribe(ctx, "CIRC", "STATUS_CLIENT")
	require.NoError(t, err)

	var wg sync.WaitGroup
	started := make(chan struct{}, 32)
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				if g%4 == 0 {
					_, err = c.AddOnion(ctx, &controlAddOnion)
				} else {
					_, err = c.GetInfoValue(ctx, "version")
				}
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for g := 0; g < 32; g++ {
		<-started
	}
	require.NoError(t, syscall.Kill(tor.PID, syscall.SIGKILL))
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.False(t, errors.Is(err, context.DeadlineExceeded), "calls return when tor dies, not at their deadline")
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed after tor was killed")
	}
	assert.Error(t, c.Err(), "Err reports why the connection ended (a read error: tor is gone)")
	for range sub.Events() { // closed, after any events still buffered
	}
	_, err = c.GetInfoValue(ctx, "version")
	assert.ErrorIs(t, err, net.ErrClosed)
	<-tor.Exited()
}
