package onion

import (
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// addressLen is the length of a v3 onion address without ".onion".
const addressLen = 56

// version3 is the version byte of v3 onion addresses.
const version3 = 3

// Errors matched (with errors.Is) by the *AddressError that ParseAddress
// returns. Every one of them also matches ErrInvalidAddress.
var (
	// ErrInvalidAddress is matched by every error about a malformed onion
	// address.
	ErrInvalidAddress = errors.New("onion: invalid v3 onion address")
	// ErrAddressLength: the address is not 56 characters long (v2
	// addresses, 16 characters, are no longer supported by tor).
	ErrAddressLength = errors.New("onion: onion address must be 56 characters")
	// ErrAddressEncoding: the address is not base32.
	ErrAddressEncoding = errors.New("onion: onion address is not base32")
	// ErrAddressVersion: the version byte is not 3.
	ErrAddressVersion = errors.New("onion: onion address version is not 3")
	// ErrAddressChecksum: the checksum does not match the public key (a typo).
	ErrAddressChecksum = errors.New("onion: onion address checksum mismatch")
	// ErrAddressKey: the checksum is right but the public key is not a
	// valid ed25519 point of prime order, which tor refuses too (it would
	// answer a SOCKS request for it with 0xF6).
	ErrAddressKey = errors.New("onion: onion address holds an invalid ed25519 key")
)

// AddressError describes a malformed onion address.
type AddressError struct {
	// Address is the address as given.
	Address string
	// Err is ErrAddressLength, ErrAddressEncoding, ErrAddressVersion,
	// ErrAddressChecksum or ErrAddressKey.
	Err error
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%v: %q", e.Err, e.Address)
}

// Unwrap returns both the specific cause and ErrInvalidAddress, so that
// errors.Is matches either.
func (e *AddressError) Unwrap() []error { return []error{e.Err, ErrInvalidAddress} }

// base32 as tor writes it: RFC 4648 alphabet in lower case, no padding.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// checksum returns the two checksum bytes of a v3 address (rend-spec-v3
// §6): SHA3-256(".onion checksum" || PUBKEY || VERSION)[:2].
func checksum(pub []byte, version byte) [2]byte {
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(pub)
	h.Write([]byte{version})
	var sum [2]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// EncodeAddress returns the v3 onion address of an ed25519 public key:
// 56 lower-case base32 characters, without ".onion". It panics if pub is
// not 32 bytes, like crypto/ed25519 does for keys of the wrong size.
func EncodeAddress(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("onion: bad public key length %d", len(pub)))
	}
	var raw [35]byte
	copy(raw[:32], pub)
	sum := checksum(pub, version3)
	raw[32], raw[33], raw[34] = sum[0], sum[1], version3
	return b32.EncodeToString(raw[:])
}

// ServiceID returns the onion service ID of an address: the 56 characters
// of the address proper, in lower case. It accepts "xxx", "xxx.onion" and
// names under it ("www.xxx.onion", which tor connects to xxx.onion), in any
// case. It does not check the address; use ParseAddress for that.
func ServiceID(addr string) string {
	s := strings.ToLower(strings.TrimSuffix(addr, "."))
	if strings.HasSuffix(s, ".onion") {
		s = strings.TrimSuffix(s, ".onion")
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// ParseAddress checks a v3 onion address and returns its ed25519 public
// key. The address may be given with or without ".onion", with
// subdomains ("www.xxx.onion") and in any case. Errors are *AddressError
// and match ErrInvalidAddress and the specific cause (ErrAddressLength,
// ErrAddressEncoding, ErrAddressVersion, ErrAddressChecksum, ErrAddressKey).
// Like tor, it refuses a key that is not a point of the ed25519 group of
// prime order (the identity, points with a small-order component).
func ParseAddress(addr string) (ed25519.PublicKey, error) {
	id := ServiceID(addr)
	if len(id) != addressLen {
		return nil, &AddressError{Address: addr, Err: ErrAddressLength}
	}
	raw, err := b32.DecodeString(id)
	if err != nil || len(raw) != 35 {
		return nil, &AddressError{Address: addr, Err: ErrAddressEncoding}
	}
	pub, sum, version := raw[:32], raw[32:34], raw[34]
	if version != version3 {
		return nil, &AddressError{Address: addr, Err: ErrAddressVersion}
	}
	if want := checksum(pub, version); sum[0] != want[0] || sum[1] != want[1] {
		return nil, &AddressError{Address: addr, Err: ErrAddressChecksum}
	}
	if !validPublicKey(pub) {
		return nil, &AddressError{Address: addr, Err: ErrAddressKey}
	}
	return ed25519.PublicKey(pub), nil
}

// IsOnion reports whether host (a host name, without port) is in the
// .onion top-level domain, in which case tor, not DNS, must resolve it.
func IsOnion(host string) bool {
	host = strings.TrimSuffix(host, ".")
	return len(host) >= len(".onion") && strings.EqualFold(host[len(host)-len(".onion"):], ".onion")
}
