package control

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddOnionPoWArguments(t *testing.T) {
	ports := []OnionPort{{VirtPort: 80, Target: "127.0.0.1:8080"}}
	for _, c := range []struct {
		pow  *OnionPoW
		want string
	}{
		{nil, "ADD_ONION NEW:BEST Port=80,127.0.0.1:8080"},
		{&OnionPoW{Enabled: true}, "ADD_ONION NEW:BEST PoWDefensesEnabled=1 Port=80,127.0.0.1:8080"},
		{&OnionPoW{}, "ADD_ONION NEW:BEST PoWDefensesEnabled=0 Port=80,127.0.0.1:8080"},
		{&OnionPoW{Enabled: true, QueueRate: 10, QueueBurst: 4294967295},
			"ADD_ONION NEW:BEST PoWDefensesEnabled=1 PoWQueueRate=10 PoWQueueBurst=4294967295 Port=80,127.0.0.1:8080"},
	} {
		line, err := (&AddOnionRequest{Ports: ports, PoW: c.pow}).line()
		require.NoError(t, err)
		assert.Equal(t, c.want, line)
	}
	for _, bad := range []*OnionPoW{{QueueRate: -1}, {QueueBurst: 4294967296}} {
		_, err := (&AddOnionRequest{Ports: ports, PoW: bad}).line()
		assert.ErrorIs(t, err, ErrInvalidArgument)
	}
}

func TestIsUnrecognizedKeyword(t *testing.T) {
	// Tor 0.4.8's answer to ADD_ONION ... PoWDefensesEnabled=1.
	err := fmt.Errorf("wrapped: %w", &Error{Command: "ADD_ONION", Code: 512, Text: `Bad arguments to ADD_ONION: Unrecognized keyword argument "PoWDefensesEnabled"`})
	assert.True(t, IsUnrecognizedKeyword(err, "PoWDefensesEnabled"))
	assert.True(t, IsUnrecognizedKeyword(err, "powdefensesenabled"))
	assert.False(t, IsUnrecognizedKeyword(err, "PoWQueueRate"))
	assert.False(t, IsUnrecognizedKeyword(&Error{Code: 512, Text: "Invalid PoWQueueRate"}, "PoWQueueRate"))
	assert.False(t, IsUnrecognizedKeyword(errors.New(`Unrecognized keyword argument "PoWDefensesEnabled"`), "PoWDefensesEnabled"))
}
