package onion

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// ClientKeyType is the only client authorization key type of v3 onion
// services.
const ClientKeyType = "x25519"

// ErrInvalidClientKey is matched by errors about a malformed client
// authorization key or .auth / .auth_private file.
var ErrInvalidClientKey = errors.New("onion: invalid client authorization key")

// b32upper decodes client keys after upper-casing (tor accepts either
// case); keys are written with b32 (lower case), as tor writes them.
var b32upper = base32.StdEncoding.WithPadding(base32.NoPadding)

// ClientKey is an x25519 key pair for v3 onion service client
// authorization (rend-spec-v3 §2.5.1.2, App. G). The service is given the
// public half (ClientPublicKey, in Listen's ClientAuth option, ADD_ONION's
// ClientAuthV3 or an authorized_clients/<name>.auth file); the client
// keeps the private half and gives it to its tor (ONION_CLIENT_AUTH_ADD or
// a <ClientOnionAuthDir>/<name>.auth_private file).
//
// The two halves travel in different encodings: tor takes the public key
// in base32 and, over the control port, the private key in base64.
//
// Like Key, a ClientKey never prints its secret.
type ClientKey struct {
	priv *ecdh.PrivateKey
}

// ClientPublicKey is the public half of a ClientKey: what a service needs
// to authorize a client.
type ClientPublicKey [32]byte

// GenerateClientKey returns a new random client authorization key pair,
// reading randomness from r (crypto/rand when r is nil).
func GenerateClientKey(r io.Reader) (*ClientKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, fmt.Errorf("onion: generate client key: %w", err)
	}
	defer clear(b[:])
	return NewClientKey(b[:])
}

// NewClientKey returns the key pair of a 32-byte x25519 private key.
func NewClientKey(priv []byte) (*ClientKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidClientKey, err)
	}
	return &ClientKey{priv: k}, nil
}

// ParseClientKey parses a client authorization private key in any of the
// forms tor uses: base64 (44 characters, as ONION_CLIENT_AUTH_ADD and
// ONION_CLIENT_AUTH_VIEW show it) or base32 (52 characters, as in an
// .auth_private file), optionally preceded by "x25519:" or
// "descriptor:x25519:".
func ParseClientKey(s string) (*ClientKey, error) {
	b, err := decodeX25519(s)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return NewClientKey(b)
}

// ParseClientPublicKey parses a client's public key: base32 (52
// characters, as in ADD_ONION's ClientAuthV3 and .auth files, either case)
// or base64 (44 characters), optionally preceded by "x25519:" or
// "descriptor:x25519:", so a whole .auth file line is accepted.
func ParseClientPublicKey(s string) (ClientPublicKey, error) {
	var pub ClientPublicKey
	b, err := decodeX25519(s)
	if err != nil {
		return pub, err
	}
	copy(pub[:], b)
	return pub, nil
}

func decodeX25519(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "descriptor:")
	if t, rest, ok := strings.Cut(s, ":"); ok {
		if !strings.EqualFold(t, ClientKeyType) {
			return nil, fmt.Errorf("%w: key type %q, want %s", ErrInvalidClientKey, t, ClientKeyType)
		}
		s = rest
	}
	var b []byte
	var err error
	switch len(s) {
	case 52:
		b, err = b32upper.DecodeString(strings.ToUpper(s))
	case 44:
		b, err = base64.StdEncoding.DecodeString(s)
	case 43:
		b, err = base64.RawStdEncoding.DecodeString(s)
	default:
		return nil, fmt.Errorf("%w: an x25519 key is 52 base32 or 44 base64 characters, got %d", ErrInvalidClientKey, len(s))
	}
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: undecodable x25519 key", ErrInvalidClientKey)
	}
	return b, nil
}

// Public returns the public half of the key pair.
func (k ClientKey) Public() ClientPublicKey {
	var pub ClientPublicKey
	copy(pub[:], k.priv.PublicKey().Bytes())
	return pub
}

// Bytes returns a copy of the 32-byte private key.
func (k *ClientKey) Bytes() []byte { return k.priv.Bytes() }

// Base64 returns the private key in base64, as ONION_CLIENT_AUTH_ADD takes
// it (after "x25519:").
func (k *ClientKey) Base64() string {
	return base64.StdEncoding.EncodeToString(k.priv.Bytes())
}

// Base32 returns the private key in base32 (52 characters, lower case, no
// padding), as tor writes it in .auth_private files.
func (k *ClientKey) Base32() string {
	return b32.EncodeToString(k.priv.Bytes())
}

// AuthPrivate returns the contents of the client-side
// <ClientOnionAuthDir>/<name>.auth_private file for the service at addr
// ("<addr56>:descriptor:x25519:<base32 private key>", rend-spec-v3 App. G),
// byte for byte as tor writes it for ONION_CLIENT_AUTH_ADD Flags=Permanent.
func (k *ClientKey) AuthPrivate(addr string) (string, error) {
	if _, err := ParseAddress(addr); err != nil {
		return "", err
	}
	return ServiceID(addr) + ":descriptor:" + ClientKeyType + ":" + k.Base32(), nil
}

// WriteAuthPrivate writes the .auth_private file for the service at addr
// as dir/<addr56>.auth_private (mode 0600; dir is created with mode 0700).
// Point tor's ClientOnionAuthDir at dir.
func (k *ClientKey) WriteAuthPrivate(dir, addr string) error {
	s, err := k.AuthPrivate(addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ServiceID(addr)+".auth_private"), []byte(s), 0o600)
}

// ParseAuthPrivate parses the contents of an .auth_private file and
// returns the onion address (56 characters) and the private key.
func ParseAuthPrivate(s string) (addr string, key *ClientKey, err error) {
	line := strings.TrimSpace(s)
	addr, rest, ok := strings.Cut(line, ":")
	if !ok || !strings.HasPrefix(rest, "descriptor:") {
		return "", nil, fmt.Errorf("%w: .auth_private must be <addr>:descriptor:x25519:<key>", ErrInvalidClientKey)
	}
	if _, err := ParseAddress(addr); err != nil {
		return "", nil, err
	}
	key, err = ParseClientKey(rest)
	if err != nil {
		return "", nil, err
	}
	return ServiceID(addr), key, nil
}

// Equal reports whether k and o are the same private key (in constant
// time).
func (k *ClientKey) Equal(o *ClientKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return subtle.ConstantTimeCompare(k.priv.Bytes(), o.priv.Bytes()) == 1
}

// String shows the public key only.
func (k ClientKey) String() string {
	return "onion.ClientKey(public " + k.Public().String() + ")"
}

// Format prints the key as String does, whatever the verb.
func (k ClientKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue makes log/slog log the public key only.
func (k ClientKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// String returns the key in base32 (52 characters, lower case, no
// padding), the form of ADD_ONION's ClientAuthV3 and .auth files.
func (p ClientPublicKey) String() string {
	return b32.EncodeToString(p[:])
}

// Base64 returns the key in base64.
func (p ClientPublicKey) Base64() string {
	return base64.StdEncoding.EncodeToString(p[:])
}

// AuthFile returns the contents of the service-side
// authorized_clients/<name>.auth file ("descriptor:x25519:<base32>").
func (p ClientPublicKey) AuthFile() string {
	return "descriptor:" + ClientKeyType + ":" + p.String()
}

// WriteAuthorizedClient writes the public key of a client as
// <serviceDir>/authorized_clients/<name>.auth, the file tor reads (at
// start and on SIGHUP) to authorize clients of a HiddenServiceDir service.
// name may hold letters, digits, '-' and '_'.
func (p ClientPublicKey) WriteAuthorizedClient(serviceDir, name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return fmt.Errorf("onion: bad client name %q: use letters, digits, '-' and '_'", name)
	}
	dir := filepath.Join(serviceDir, "authorized_clients")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, name+".auth"), []byte(p.AuthFile()), 0o600)
}
