package onion

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File names tor uses in a HiddenServiceDir.
const (
	SecretKeyFile = "hs_ed25519_secret_key"
	PublicKeyFile = "hs_ed25519_public_key"
	HostnameFile  = "hostname"
)

// The 32-byte headers of tor's key files (tor's crypto_format.c): the tag
// text padded with NUL bytes.
const (
	secretKeyTag = "== ed25519v1-secret: type0 =="
	publicKeyTag = "== ed25519v1-public: type0 =="
	headerSize   = 32
)

func header(tag string) []byte {
	h := make([]byte, headerSize)
	copy(h, tag)
	return h
}

// MarshalSecretKeyFile returns the contents of tor's hs_ed25519_secret_key
// file for k: the 32-byte header "== ed25519v1-secret: type0 ==" (padded
// with NULs) followed by the 64-byte expanded key, 96 bytes in all.
func (k *Key) MarshalSecretKeyFile() []byte {
	return append(header(secretKeyTag), k.exp[:]...)
}

// parseSecretKeyFile parses the contents of tor's hs_ed25519_secret_key.
func parseSecretKeyFile(b []byte) (*Key, error) {
	if len(b) != headerSize+expandedKeySize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrInvalidKey, SecretKeyFile, len(b), headerSize+expandedKeySize)
	}
	if !bytes.Equal(b[:headerSize], header(secretKeyTag)) {
		return nil, fmt.Errorf("%w: %s does not start with %q", ErrInvalidKey, SecretKeyFile, secretKeyTag)
	}
	return newKeyFromExpanded(b[headerSize:])
}

// marshalPublicKeyFile returns the contents of tor's hs_ed25519_public_key
// file: the header "== ed25519v1-public: type0 ==" padded to 32 bytes, then
// the public key.
func marshalPublicKeyFile(pub ed25519.PublicKey) []byte {
	return append(header(publicKeyTag), pub...)
}

// parsePublicKeyFile parses the contents of tor's hs_ed25519_public_key.
func parsePublicKeyFile(b []byte) (ed25519.PublicKey, error) {
	if len(b) != headerSize+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrInvalidKey, PublicKeyFile, len(b), headerSize+ed25519.PublicKeySize)
	}
	if !bytes.Equal(b[:headerSize], header(publicKeyTag)) {
		return nil, fmt.Errorf("%w: %s does not start with %q", ErrInvalidKey, PublicKeyFile, publicKeyTag)
	}
	return bytes.Clone(b[headerSize:]), nil
}

// readSecretKeyFile reads tor's hs_ed25519_secret_key file.
func readSecretKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	k, err := parseSecretKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}

// writeSecretKeyFile writes k to path in the format of tor's
// hs_ed25519_secret_key, readable by the owner only (mode 0600). The file
// is written under a temporary name and renamed, so a reader never sees
// half a key.
func (k *Key) writeSecretKeyFile(path string) error {
	b := k.MarshalSecretKeyFile()
	defer clear(b)
	return writeFileAtomic(path, b, 0o600)
}

// WriteServiceDir writes the key files of an onion service directory the
// way tor does for a HiddenServiceDir: hs_ed25519_secret_key,
// hs_ed25519_public_key and hostname ("<addr>.onion\n"), all mode 0600,
// creating dir with mode 0700 when it does not exist (tor refuses a
// HiddenServiceDir that others can read). A tor given this directory
// publishes the service under k's address.
func WriteServiceDir(dir string, k *Key) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := k.writeSecretKeyFile(filepath.Join(dir, SecretKeyFile)); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, PublicKeyFile), marshalPublicKeyFile(k.pub[:]), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, HostnameFile), []byte(k.Hostname()+"\n"), 0o600)
}

// ReadServiceDir reads the key of an onion service directory (a tor
// HiddenServiceDir). The public key file and the hostname, when present,
// must agree with the secret key; an error says which one does not.
func ReadServiceDir(dir string) (*Key, error) {
	k, err := readSecretKeyFile(filepath.Join(dir, SecretKeyFile))
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, PublicKeyFile)); err == nil {
		pub, err := parsePublicKeyFile(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, dir)
		}
		if !bytes.Equal(pub, k.pub[:]) {
			return nil, fmt.Errorf("%w: %s does not match %s in %s", ErrInvalidKey, PublicKeyFile, SecretKeyFile, dir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, HostnameFile)); err == nil {
		if h := strings.TrimSpace(string(b)); h != k.Hostname() {
			return nil, fmt.Errorf("%w: %s %q does not match %s (%s) in %s", ErrInvalidKey, HostnameFile, h, SecretKeyFile, k.Hostname(), dir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return k, nil
}

// ReadHostname reads the hostname file of an onion service directory and
// checks the address in it.
func ReadHostname(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, HostnameFile))
	if err != nil {
		return "", err
	}
	h := strings.TrimSpace(string(b))
	if _, err := ParseAddress(h); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, HostnameFile), err)
	}
	return h, nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}
