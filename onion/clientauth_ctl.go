package onion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gotorcon/tor/control"
)

// ClientAuth is a client authorization credential held by a tor client:
// the private key it uses to reach one onion service that requires client
// authorization.
type ClientAuth struct {
	// Address is the service's onion address (56 characters; ".onion" is
	// accepted and removed).
	Address string
	// Key is the client's private key; the service must list its public
	// half (ListenConfig.ClientAuth).
	Key *ClientKey
	// Name is an optional nickname (letters, digits, '-', '_').
	Name string
	// Permanent asks tor to store the credential in its ClientOnionAuthDir
	// (which must be configured), so that it survives a restart.
	Permanent bool
}

// ErrClientAuthStore is matched when tor cannot store a Permanent
// credential, usually because ClientOnionAuthDir is not set.
var ErrClientAuthStore = errors.New("onion: tor cannot store the credential (is ClientOnionAuthDir set?)")

// ClientAuthResult says what tor did with a credential given to
// AddClientAuth (ONION_CLIENT_AUTH_ADD's reply code).
type ClientAuthResult int

const (
	// ClientAuthAdded: tor had no credential for the address (250).
	ClientAuthAdded ClientAuthResult = iota
	// ClientAuthReplaced: the credential replaced the one tor had (251).
	ClientAuthReplaced
	// ClientAuthDecrypted: tor held a descriptor of the service that it
	// could not read, and the credential decrypted it (252); tor then
	// does not say whether a credential was replaced. The next connection
	// uses that descriptor without fetching it again.
	ClientAuthDecrypted
)

// String returns "added", "replaced" or "decrypted".
func (r ClientAuthResult) String() string {
	switch r {
	case ClientAuthAdded:
		return "added"
	case ClientAuthReplaced:
		return "replaced"
	case ClientAuthDecrypted:
		return "decrypted"
	}
	return fmt.Sprintf("ClientAuthResult(%d)", int(r))
}

// AddClientAuth gives tor a client authorization credential
// (ONION_CLIENT_AUTH_ADD), used for the next connection to the service.
func AddClientAuth(ctx context.Context, conn *control.Conn, a ClientAuth) (ClientAuthResult, error) {
	if a.Key == nil {
		return 0, errors.New("onion: AddClientAuth needs a Key")
	}
	if _, err := ParseAddress(a.Address); err != nil {
		return 0, err
	}
	ca := control.OnionClientAuth{
		Address:    ServiceID(a.Address),
		KeyType:    ClientKeyType,
		PrivateKey: a.Key.Base64(),
		ClientName: a.Name,
	}
	if a.Permanent {
		ca.Flags = []string{"Permanent"}
	}
	code, err := conn.OnionClientAuthAdd(ctx, ca)
	if err != nil {
		if errors.Is(err, control.ErrInvalidConfigValue) && a.Permanent {
			return 0, fmt.Errorf("%w: %w", ErrClientAuthStore, err)
		}
		return 0, fmt.Errorf("onion: ONION_CLIENT_AUTH_ADD: %w", err)
	}
	switch code {
	case 251:
		return ClientAuthReplaced, nil
	case 252:
		return ClientAuthDecrypted, nil
	}
	return ClientAuthAdded, nil
}

// RemoveClientAuth removes tor's credential for an onion address
// (ONION_CLIENT_AUTH_REMOVE). removed is false when there was none.
func RemoveClientAuth(ctx context.Context, conn *control.Conn, addr string) (removed bool, err error) {
	if _, err := ParseAddress(addr); err != nil {
		return false, err
	}
	code, err := conn.OnionClientAuthRemove(ctx, ServiceID(addr))
	if err != nil {
		return false, fmt.Errorf("onion: ONION_CLIENT_AUTH_REMOVE: %w", err)
	}
	return code == 250, nil
}

// ClientAuths lists tor's client authorization credentials
// (ONION_CLIENT_AUTH_VIEW): for one onion address, or all of them when
// addr is empty.
func ClientAuths(ctx context.Context, conn *control.Conn, addr string) ([]ClientAuth, error) {
	if addr != "" {
		if _, err := ParseAddress(addr); err != nil {
			return nil, err
		}
		addr = ServiceID(addr)
	}
	list, err := conn.OnionClientAuthView(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("onion: ONION_CLIENT_AUTH_VIEW: %w", err)
	}
	res := make([]ClientAuth, 0, len(list))
	for _, c := range list {
		if !strings.EqualFold(c.KeyType, ClientKeyType) {
			return res, fmt.Errorf("%w: tor listed a %q key for %s", ErrInvalidClientKey, c.KeyType, c.Address)
		}
		k, err := ParseClientKey(c.PrivateKey)
		if err != nil {
			return res, fmt.Errorf("onion: key tor listed for %s: %w", c.Address, err)
		}
		res = append(res, ClientAuth{
			Address:   c.Address,
			Key:       k,
			Name:      c.ClientName,
			Permanent: slices.ContainsFunc(c.Flags, func(f string) bool { return strings.EqualFold(f, "Permanent") }),
		})
	}
	return res, nil
}
