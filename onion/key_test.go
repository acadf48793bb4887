package onion

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// torDir holds the files tor 0.4.9.11 wrote for a HiddenServiceDir while
// offline (DisableNetwork 1).
const torDir = "../testdata/onion/hsdir-0.4.9.11"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestTorServiceDirVector(t *testing.T) {
	k, err := ReadServiceDir(torDir)
	require.NoError(t, err)

	host, err := os.ReadFile(filepath.Join(torDir, HostnameFile))
	require.NoError(t, err)
	assert.Equal(t, string(host), k.Hostname()+"\n", "derived hostname equals tor's hostname file")

	pubFile, err := os.ReadFile(filepath.Join(torDir, PublicKeyFile))
	require.NoError(t, err)
	assert.Equal(t, pubFile, marshalPublicKeyFile(k.Public()), "public key file byte for byte")
	pub, err := parsePublicKeyFile(pubFile)
	require.NoError(t, err)
	assert.Equal(t, ed25519.PublicKey(pub), k.Public())

	secFile, err := os.ReadFile(filepath.Join(torDir, SecretKeyFile))
	require.NoError(t, err)
	assert.Equal(t, secFile, k.MarshalSecretKeyFile(), "secret key file byte for byte")
	assert.Len(t, secFile, 96)

	// Writing the key back reproduces tor's three files exactly.
	out := filepath.Join(t.TempDir(), "hs")
	require.NoError(t, WriteServiceDir(out, k))
	for _, name := range []string{HostnameFile, PublicKeyFile, SecretKeyFile} {
		want, err := os.ReadFile(filepath.Join(torDir, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
		if runtime.GOOS != "windows" {
			fi, err := os.Stat(filepath.Join(out, name))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), name)
		}
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(out)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	}
	h, err := ReadHostname(out)
	require.NoError(t, err)
	assert.Equal(t, k.Hostname(), h)

	// The ADD_ONION blob is the secret file without its header.
	assert.Equal(t, "ED25519-V3:"+base64.StdEncoding.EncodeToString(secFile[32:]), k.Blob())
}

// A key and ServiceID pair from a live ADD_ONION NEW:ED25519-V3 reply
// (control-protocol-facts §4.1).
func TestAddOnionReplyVector(t *testing.T) {
	k, err := ParseKeyBlob("ED25519-V3:aJ5vPTsTth2+SUWAS8vILW8Rkz4SqF7TMAWE9yoEOUEUc2m39AYbrb5uKDnHTs7H+S8bGg1S82nwWI32jugYBA==")
	require.NoError(t, err)
	assert.Equal(t, "kjawryjpvr7yslij76jnuyycs6jlu2sxo2dmslswedczyhkgfzsfztyd", k.ServiceID())
	k2, err := ParseKeyBlob("aJ5vPTsTth2+SUWAS8vILW8Rkz4SqF7TMAWE9yoEOUEUc2m39AYbrb5uKDnHTs7H+S8bGg1S82nwWI32jugYBA==")
	require.NoError(t, err)
	assert.True(t, k.Equal(k2), "prefix is optional")
	assert.Equal(t, "ED25519-V3:aJ5vPTsTth2+SUWAS8vILW8Rkz4SqF7TMAWE9yoEOUEUc2m39AYbrb5uKDnHTs7H+S8bGg1S82nwWI32jugYBA==", k.Blob())
}

// RFC 8032 §7.1 test 1; the address was computed independently with
// Python's hashlib.sha3_256 and base64.b32encode.
func TestNewKeyRFC8032(t *testing.T) {
	seed := mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	pub := mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	k, err := NewKey(ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	assert.Equal(t, ed25519.PublicKey(pub), k.Public())
	assert.Equal(t, "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid", k.ServiceID())
	assert.Equal(t, "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid", EncodeAddress(pub))

	// The expanded key is SHA-512(seed), clamped.
	exp := k.exp[:]
	assert.Equal(t, byte(0), exp[0]&7)
	assert.Equal(t, byte(64), exp[31]&0xC0)
}

func TestNewKeyMatchesStdlibPublicKey(t *testing.T) {
	for i := 0; i < 200; i++ {
		seed := bytes.Repeat([]byte{byte(i)}, 32)
		seed[0] = byte(i * 7)
		priv := ed25519.NewKeyFromSeed(seed)
		k, err := NewKey(priv)
		require.NoError(t, err)
		require.Equal(t, priv.Public(), k.Public())
		// Round trips through every stored form.
		k2, err := newKeyFromExpanded(k.exp[:])
		require.NoError(t, err)
		require.True(t, k.Equal(k2))
		k3, err := ParseKeyBlob(k.Blob())
		require.NoError(t, err)
		require.True(t, k.Equal(k3))
		k4, err := parseSecretKeyFile(k.MarshalSecretKeyFile())
		require.NoError(t, err)
		require.True(t, k.Equal(k4))
		pk, err := ParseAddress(k.Hostname())
		require.NoError(t, err)
		require.Equal(t, priv.Public(), pk)
	}
}

func TestGenerateKey(t *testing.T) {
	seed := bytes.Repeat([]byte{42}, 32)
	k, err := GenerateKey(bytes.NewReader(seed))
	require.NoError(t, err)
	want, err := NewKey(ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	assert.True(t, k.Equal(want))

	a, err := GenerateKey(nil)
	require.NoError(t, err)
	b, err := GenerateKey(nil)
	require.NoError(t, err)
	assert.False(t, a.Equal(b))
	assert.NotEqual(t, a.ServiceID(), b.ServiceID())

	_, err = GenerateKey(bytes.NewReader(seed[:10]))
	assert.Error(t, err)
}

func TestKeyErrors(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))

	_, err := newKeyFromExpanded(priv)
	assert.ErrorIs(t, err, ErrInvalidKey)
	assert.ErrorContains(t, err, "crypto/ed25519 private key")

	// A stdlib key whose seed happens to look clamped is still recognised.
	seed := bytes.Repeat([]byte{9}, 32)
	seed[0] &= 248
	seed[31] = seed[31]&127 | 64
	_, err = newKeyFromExpanded(ed25519.NewKeyFromSeed(seed))
	assert.ErrorContains(t, err, "crypto/ed25519 private key")

	_, err = newKeyFromExpanded(make([]byte, 63))
	assert.ErrorIs(t, err, ErrInvalidKey)
	unclamped := make([]byte, 64)
	unclamped[0] = 1
	_, err = newKeyFromExpanded(unclamped)
	assert.ErrorIs(t, err, ErrInvalidKey)
	assert.ErrorContains(t, err, "clamped")

	_, err = NewKey(priv[:32])
	assert.ErrorIs(t, err, ErrInvalidKey)
	bad := bytes.Clone(priv)
	bad[40] ^= 1
	_, err = NewKey(bad)
	assert.ErrorIs(t, err, ErrInvalidKey)

	for _, blob := range []string{
		"RSA1024:MIICWwIBAAKBgQDEUiDokz6ksp",
		"ED25519-V3:not base64!",
		"ED25519-V3:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"",
	} {
		_, err := ParseKeyBlob(blob)
		assert.ErrorIs(t, err, ErrInvalidKey, blob)
	}

	k, err := NewKey(priv)
	require.NoError(t, err)
	file := k.MarshalSecretKeyFile()
	_, err = parseSecretKeyFile(file[:95])
	assert.ErrorIs(t, err, ErrInvalidKey)
	wrong := bytes.Clone(file)
	copy(wrong, "== ed25519v1-public: type0 ==")
	_, err = parseSecretKeyFile(wrong)
	assert.ErrorIs(t, err, ErrInvalidKey)
	_, err = parsePublicKeyFile(file[:64])
	assert.ErrorIs(t, err, ErrInvalidKey)
	pubFile := marshalPublicKeyFile(k.Public())
	pubFile[0] = 'x'
	_, err = parsePublicKeyFile(pubFile)
	assert.ErrorIs(t, err, ErrInvalidKey)

	assert.True(t, (*Key)(nil).Equal(nil))
	assert.False(t, k.Equal(nil))
}

func TestReadServiceDirMismatch(t *testing.T) {
	k1, _ := GenerateKey(nil)
	k2, _ := GenerateKey(nil)

	dir := t.TempDir()
	require.NoError(t, WriteServiceDir(dir, k1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, HostnameFile), []byte(k2.Hostname()+"\n"), 0o600))
	_, err := ReadServiceDir(dir)
	assert.ErrorIs(t, err, ErrInvalidKey)
	assert.ErrorContains(t, err, "hostname")

	dir = t.TempDir()
	require.NoError(t, WriteServiceDir(dir, k1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, PublicKeyFile), marshalPublicKeyFile(k2.Public()), 0o600))
	_, err = ReadServiceDir(dir)
	assert.ErrorIs(t, err, ErrInvalidKey)
	assert.ErrorContains(t, err, PublicKeyFile)

	// Only the secret key is required.
	dir = t.TempDir()
	require.NoError(t, k1.writeSecretKeyFile(filepath.Join(dir, SecretKeyFile)))
	k, err := ReadServiceDir(dir)
	require.NoError(t, err)
	assert.True(t, k.Equal(k1))

	_, err = ReadServiceDir(t.TempDir())
	assert.ErrorIs(t, err, os.ErrNotExist)

	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	require.NoError(t, os.WriteFile(filepath.Join(dir, HostnameFile), []byte("nope.onion\n"), 0o600))
	_, err = ReadHostname(dir)
	assert.ErrorIs(t, err, ErrInvalidAddress)
}

func TestKeyNeverPrintsSecret(t *testing.T) {
	k, err := ReadServiceDir(torDir)
	require.NoError(t, err)
	secrets := []string{
		k.blobData(),
		hex.EncodeToString(k.exp[:]),
		strings.ToUpper(hex.EncodeToString(k.exp[:][:8])),
		strings.Trim(fmt.Sprint(k.exp[:][:8]), "[]"),
		strings.Trim(fmt.Sprint(k.exp[:][32:40]), "[]"),
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "key", k)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "key", k)
	outputs := []string{
		fmt.Sprintf("%v|%+v|%#v|%s|%x|%X|%q|%d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v %x %d", *k, struct{ K *Key }{k}, *k, *k, *k),
		fmt.Sprintf("%v %+v %#v", struct{ K Key }{*k}, []Key{*k}, map[string]*Key{"a": k}),
		fmt.Sprintf("%v %+v %#v", struct{ k Key }{*k}, struct{ k Key }{*k}, struct{ k Key }{*k}),
		logs.String(),
	}
	for i, out := range outputs {
		if i != 3 { // fmt cannot call methods of unexported fields
			assert.Contains(t, out, k.ServiceID())
		}
		for _, s := range secrets {
			assert.NotContains(t, out, s)
		}
	}
	assert.Equal(t, "<nil>", fmt.Sprint((*Key)(nil)))
}

func TestParseAddress(t *testing.T) {
	const addr = "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad"
	k, err := ReadServiceDir(torDir)
	require.NoError(t, err)
	for _, s := range []string{
		addr,
		addr + ".onion",
		addr + ".onion.",
		strings.ToUpper(addr) + ".ONION",
		"www." + addr + ".onion",
		"a.b.c." + addr + ".onion",
	} {
		pub, err := ParseAddress(s)
		require.NoError(t, err, s)
		assert.Equal(t, k.Public(), pub, s)
		assert.Equal(t, addr, ServiceID(s), s)
	}

	// Every single-character change is caught.
	for i := 0; i < len(addr); i++ {
		for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
			if byte(c) == addr[i] {
				continue
			}
			bad := addr[:i] + string(c) + addr[i+1:]
			_, err := ParseAddress(bad)
			require.ErrorIs(t, err, ErrInvalidAddress, bad)
		}
	}

	cases := []struct {
		addr string
		want error
	}{
		{"", ErrAddressLength},
		{"expyuzz4wqqyqhjn.onion", ErrAddressLength}, // v2
		{addr[:55], ErrAddressLength},
		{addr + "a", ErrAddressLength},
		{addr[:10] + "1" + addr[11:], ErrAddressEncoding},
		{addr[:10] + "=" + addr[11:], ErrAddressEncoding},
		{addr[:55] + "a", ErrAddressVersion}, // the last character is the version's low bits
		{"a" + addr[1:], ErrAddressChecksum},
		{addr + ".com", ErrAddressLength},
	}
	for _, c := range cases {
		_, err := ParseAddress(c.addr)
		require.Error(t, err, c.addr)
		assert.ErrorIs(t, err, c.want, c.addr)
		assert.ErrorIs(t, err, ErrInvalidAddress, c.addr)
		var ae *AddressError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, c.addr, ae.Address)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", c.addr))
	}
}

// Addresses with a right checksum and version but a key tor refuses
// (tor's ed25519_validate_pubkey).
func TestParseAddressBadKeys(t *testing.T) {
	identity := edwards25519.NewIdentityPoint().Bytes()
	// The point of order 2, (0, -1).
	order2 := mustHex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	t2, err := new(edwards25519.Point).SetBytes(order2)
	require.NoError(t, err)
	k, _ := GenerateKey(nil)
	p, err := new(edwards25519.Point).SetBytes(k.Public())
	require.NoError(t, err)
	mixed := new(edwards25519.Point).Add(p, t2).Bytes()

	// A y with no x on the curve.
	var notOnCurve []byte
	for i := 2; notOnCurve == nil; i++ {
		y := make([]byte, 32)
		y[0] = byte(i)
		if _, err := new(edwards25519.Point).SetBytes(y); err != nil {
			notOnCurve = y
		}
	}

	for name, pub := range map[string][]byte{
		"identity":     identity,
		"order 2":      order2,
		"torsion":      mixed,
		"not on curve": notOnCurve,
	} {
		addr := EncodeAddress(pub)
		_, err := ParseAddress(addr)
		assert.ErrorIs(t, err, ErrAddressKey, name)
		assert.ErrorIs(t, err, ErrInvalidAddress, name)
	}
	// The prime-order part alone is fine.
	_, err = ParseAddress(EncodeAddress(k.Public()))
	assert.NoError(t, err)
}

func TestEncodeAddressPanicsOnBadKey(t *testing.T) {
	assert.Panics(t, func() { EncodeAddress(make([]byte, 31)) })
}

func TestIsOnion(t *testing.T) {
	for s, want := range map[string]bool{
		"x.onion": true, "X.ONION": true, "a.b.onion.": true, ".onion": true,
		"onion": false, "example.com": false, "xonion": false, "x.onion.com": false, "": false,
	} {
		assert.Equal(t, want, IsOnion(s), s)
	}
}

func FuzzParseAddress(f *testing.F) {
	f.Add("5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad.onion")
	f.Add("25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid")
	f.Add("expyuzz4wqqyqhjn.onion")
	f.Add("www.a.onion")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("error %v does not match ErrInvalidAddress", err)
			}
			return
		}
		if got := EncodeAddress(pub); got != ServiceID(s) {
			t.Fatalf("EncodeAddress(ParseAddress(%q)) = %q", s, got)
		}
	})
}
