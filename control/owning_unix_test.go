//go:build unix

package control_test

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
)

// TestRealOwningControllerFD wraps one end of a socket pair whose other end
// tor got as __OwningControllerFD: the connection starts authenticated, and
// tor exits when it is closed.
func TestRealOwningControllerFD(t *testing.T) {
	checkNoLeak(t)
	// Both ends must be close-on-exec: a tor that inherits our end too never
	// sees the connection close.
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	require.NoError(t, err)
	ours := os.NewFile(uintptr(fds[0]), "control")
	theirs := os.NewFile(uintptr(fds[1]), "tor-control")
	tor := testtor.Start(t, testtor.Options{
		NoCookie:   true,
		ExtraFiles: []*os.File{theirs},
		Extra:      []config.Option{{Key: "__OwningControllerFD", Value: "3"}},
	})
	theirs.Close()
	nc, err := net.FileConn(ours)
	require.NoError(t, err)
	ours.Close()

	c := control.NewConn(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := c.GetInfoValue(ctx, "version") // no AUTHENTICATE needed
	require.NoError(t, err)
	assert.NotEmpty(t, v)
	require.NoError(t, c.Close())
	select {
	case <-tor.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("tor did not exit when its owning controller connection closed")
	}
}
