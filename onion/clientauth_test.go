package onion

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The .auth_private file tor 0.4.9.11 wrote for
//
//	ONION_CLIENT_AUTH_ADD 5kxn…gaad x25519:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= Flags=Permanent
//
// (private key bytes 0, 1, …, 31).
const torAuthPrivate = "../testdata/onion/5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad.auth_private"

func seq32() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestTorAuthPrivateVector(t *testing.T) {
	data, err := os.ReadFile(torAuthPrivate)
	require.NoError(t, err)
	addr, k, err := ParseAuthPrivate(string(data))
	require.NoError(t, err)
	assert.Equal(t, "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad", addr)
	assert.Equal(t, seq32(), k.Bytes())
	assert.Equal(t, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", k.Base64(), "as tor's ONION_CLIENT_AUTH_VIEW shows it")

	// We write exactly what tor writes.
	s, err := k.AuthPrivate(addr + ".onion")
	require.NoError(t, err)
	assert.Equal(t, string(data), s)
	dir := filepath.Join(t.TempDir(), "auth")
	require.NoError(t, k.WriteAuthPrivate(dir, addr))
	got, err := os.ReadFile(filepath.Join(dir, addr+".auth_private"))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, addr+".auth_private"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}

	_, err = k.AuthPrivate("not-an-onion")
	assert.ErrorIs(t, err, ErrInvalidAddress)
}

// RFC 7748 §6.1: Alice's key pair.
func TestClientKeyRFC7748(t *testing.T) {
	k, err := NewClientKey(mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	require.NoError(t, err)
	pub := k.Public()
	assert.Equal(t, mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), pub[:])
}

func TestClientKeyEncodings(t *testing.T) {
	k, err := GenerateClientKey(nil)
	require.NoError(t, err)
	pub := k.Public()

	assert.Len(t, pub.String(), 52)
	assert.Equal(t, strings.ToLower(pub.String()), pub.String())
	assert.Len(t, k.Base32(), 52)
	assert.Len(t, k.Base64(), 44)
	assert.Equal(t, "descriptor:x25519:"+pub.String(), pub.AuthFile())

	for _, s := range []string{
		pub.String(),
		strings.ToUpper(pub.String()),
		pub.Base64(),
		strings.TrimRight(pub.Base64(), "="),
		"x25519:" + pub.String(),
		"descriptor:x25519:" + pub.String(),
		pub.AuthFile() + "\n",
		"  " + pub.AuthFile() + "\r\n",
	} {
		got, err := ParseClientPublicKey(s)
		require.NoError(t, err, s)
		assert.Equal(t, pub, got, s)
	}
	for _, s := range []string{
		k.Base64(), k.Base32(), strings.ToUpper(k.Base32()), "x25519:" + k.Base64(), "descriptor:x25519:" + k.Base32(),
	} {
		got, err := ParseClientKey(s)
		require.NoError(t, err, s)
		assert.True(t, k.Equal(got), s)
	}

	for _, s := range []string{
		"", "x448:" + pub.String(), pub.String()[:51], pub.String() + "a",
		strings.Repeat("1", 52), strings.Repeat("!", 44), "descriptor:x25519:",
	} {
		_, err := ParseClientPublicKey(s)
		assert.ErrorIs(t, err, ErrInvalidClientKey, s)
		_, err = ParseClientKey(s)
		assert.ErrorIs(t, err, ErrInvalidClientKey, s)
	}
	_, err = NewClientKey(make([]byte, 31))
	assert.ErrorIs(t, err, ErrInvalidClientKey)

	k2, err := GenerateClientKey(bytes.NewReader(seq32()))
	require.NoError(t, err)
	assert.Equal(t, seq32(), k2.Bytes())
	assert.False(t, k.Equal(k2))
	assert.True(t, (*ClientKey)(nil).Equal(nil))
	_, err = GenerateClientKey(bytes.NewReader(nil))
	assert.Error(t, err)
}

func TestParseAuthPrivateErrors(t *testing.T) {
	k, _ := NewClientKey(seq32())
	const addr = "5kxn7m3byybbaxqewdtnxya5hgeuznz3mynyjs37xzqfxm2n3pangaad"
	for _, s := range []string{
		"",
		addr,
		addr + ":x25519:" + k.Base32(),
		"abc:descriptor:x25519:" + k.Base32(),
		addr + ":descriptor:x448:" + k.Base32(),
		addr + ":descriptor:x25519:" + k.Base32()[:40],
	} {
		_, _, err := ParseAuthPrivate(s)
		assert.Error(t, err, s)
	}
	got, key, err := ParseAuthPrivate(strings.ToUpper(addr) + ":descriptor:x25519:" + k.Base32() + "\n")
	require.NoError(t, err)
	assert.Equal(t, addr, got)
	assert.True(t, k.Equal(key))
}

func TestWriteAuthorizedClient(t *testing.T) {
	k, _ := GenerateClientKey(nil)
	dir := t.TempDir()
	require.NoError(t, k.Public().WriteAuthorizedClient(dir, "alice-1_x"))
	b, err := os.ReadFile(filepath.Join(dir, "authorized_clients", "alice-1_x.auth"))
	require.NoError(t, err)
	assert.Equal(t, "descriptor:x25519:"+k.Public().String(), string(b))
	pub, err := ParseClientPublicKey(string(b))
	require.NoError(t, err)
	assert.Equal(t, k.Public(), pub)
	for _, name := range []string{"", "../x", "a b", "a/b", "é"} {
		assert.Error(t, k.Public().WriteAuthorizedClient(dir, name), name)
	}
}

func TestClientKeyNeverPrintsSecret(t *testing.T) {
	k, _ := NewClientKey(seq32())
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("k", "key", k)
	out := fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k) + fmt.Sprintf("%v %+v", *k, struct{ k ClientKey }{*k}) + logs.String()
	for _, secret := range []string{k.Base64(), k.Base32(), strings.ToUpper(k.Base32()), "0 1 2 3 4 5 6 7", "000102030405"} {
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, out, k.Public().String())
}
