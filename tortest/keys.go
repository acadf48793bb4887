package tortest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// keygenTimeout bounds each tor-gencert and tor --list-fingerprint run.
const keygenTimeout = 60 * time.Second

var hexFP = regexp.MustCompile(`^[0-9A-F]{40}$`)

// makeAuthorityKeys creates the v3 authority keys of an authority in
// dataDir/keys with tor-gencert. The certificate embeds the authority's
// DirPort address, so the keys are made for that address. It returns the v3
// identity fingerprint (the "v3ident" of a DirAuthority line).
func makeAuthorityKeys(ctx context.Context, gencert, dataDir, dirAddr string) (string, error) {
	keys := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return "", fmt.Errorf("tortest: %w", err)
	}
	return runGencert(ctx, gencert, dataDir, "--create-identity-key",
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", filepath.Join(keys, "authority_certificate"),
		"-m", "12",
		"-a", dirAddr)
}

// runGencert runs tor-gencert with args (which must name the certificate
// file with -c) and an empty passphrase, and returns the fingerprint of the
// certificate it wrote.
func runGencert(ctx context.Context, gencert, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, keygenTimeout)
	defer cancel()
	cert := ""
	for i, a := range args {
		if a == "-c" && i+1 < len(args) {
			cert = args[i+1]
		}
	}
	cmd := exec.CommandContext(ctx, gencert, append([]string{"--passphrase-fd", "0"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("\n") // empty passphrase
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tortest: %s failed: %w\n%s", gencert, errors.Join(err, ctx.Err()), bytes.TrimSpace(out))
	}
	b, err := os.ReadFile(cert)
	if err != nil {
		return "", fmt.Errorf("tortest: reading authority certificate: %w", err)
	}
	return certFingerprint(b)
}

// certFingerprint returns the "fingerprint" of an authority key certificate.
func certFingerprint(cert []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(cert))
	for sc.Scan() {
		if fp, ok := strings.CutPrefix(sc.Text(), "fingerprint "); ok {
			fp = strings.ToUpper(strings.TrimSpace(fp))
			if !hexFP.MatchString(fp) {
				return "", fmt.Errorf("tortest: malformed fingerprint %q in authority certificate", fp)
			}
			return fp, nil
		}
	}
	return "", errors.New("tortest: no fingerprint line in authority certificate")
}

// makeRelayKeys makes tor create the relay identity keys in dataDir (as
// "tor --list-fingerprint" does) and returns the RSA identity fingerprint.
func makeRelayKeys(ctx context.Context, tor, dataDir, nickname string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("tortest: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, keygenTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tor,
		"--defaults-torrc", os.DevNull, "--ignore-missing-torrc",
		"-f", filepath.Join(dataDir, "no-such-torrc"),
		"--DataDirectory", dataDir,
		"--ORPort", "1", // any port: it only makes tor act as a relay
		"--Nickname", nickname,
		"--GeoIPFile", os.DevNull, "--GeoIPv6File", os.DevNull,
		"--Log", "warn stderr",
		"--list-fingerprint")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("tortest: %s --list-fingerprint failed: %w\n%s", tor, errors.Join(err, ctx.Err()), bytes.TrimSpace(out))
	}
	return readFingerprintFile(filepath.Join(dataDir, "fingerprint"))
}

// readFingerprintFile reads the "nickname FINGERPRINT" file tor writes in
// the DataDirectory of a relay.
func readFingerprintFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("tortest: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || !hexFP.MatchString(f[1]) {
		return "", fmt.Errorf("tortest: malformed fingerprint file %s: %q", path, b)
	}
	return f[1], nil
}

// Pre-generated keys.
//
// RSA key generation dominates a cold start (tor-gencert's 3072-bit
// identity key alone takes 0.3–3 s, and every relay identity another
// 0.3 s, all of it highly variable and competing for the CPU with a network
// that is starting next door). Like net/http/httptest with its built-in
// certificate, tortest therefore ships keys for the nodes of its usual
// networks: they protect nothing (every node listens on 127.0.0.1 only and
// lives for one test), and they make start-ups fast and steady. Only the
// authority certificate, which embeds the DirPort address, is made at each
// start, with "tor-gencert --reuse" (~20 ms). Nodes beyond the shipped set
// get fresh keys. Regenerate the set with
//
//	go test ./tortest -run TestEmbeddedKeys -update-keys

//go:embed keys
var embeddedKeys embed.FS

// embeddedKeyFiles are the files shipped per node, in keys/<nickname>/.
// The ed25519 signing key and certificate are left out on purpose: they
// expire after 30 days and tor makes new ones from the master key at start.
var embeddedKeyFiles = map[Role][]string{
	Authority: {"authority_identity_key", "authority_signing_key", "secret_id_key", "secret_onion_key", "secret_onion_key_ntor", "ed25519_master_id_secret_key", "ed25519_master_id_public_key"},
	Relay:     {"secret_id_key", "secret_onion_key", "secret_onion_key_ntor", "ed25519_master_id_secret_key", "ed25519_master_id_public_key"},
}

// installEmbeddedKeys copies the shipped keys of nd, if there are any, into
// its DataDirectory and sets its fingerprints (for an authority after
// signing a certificate for its DirPort). It reports false when no keys are
// shipped for nd.
func installEmbeddedKeys(ctx context.Context, gencert string, nd *Node) (bool, error) {
	files := embeddedKeyFiles[nd.Role]
	src := "keys/" + nd.Nickname
	if _, err := fs.Stat(embeddedKeys, src+"/"+files[0]); err != nil {
		return false, nil
	}
	keys := filepath.Join(nd.DataDir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return false, fmt.Errorf("tortest: %w", err)
	}
	for _, f := range files {
		b, err := embeddedKeys.ReadFile(src + "/" + f)
		if err != nil {
			return false, fmt.Errorf("tortest: shipped keys of %s: %w", nd.Nickname, err)
		}
		if err := os.WriteFile(filepath.Join(keys, f), b, 0o600); err != nil {
			return false, fmt.Errorf("tortest: %w", err)
		}
	}
	idKey, err := embeddedKeys.ReadFile(src + "/secret_id_key")
	if err != nil {
		return false, fmt.Errorf("tortest: %w", err)
	}
	if nd.Fingerprint, err = rsaFingerprint(idKey); err != nil {
		return false, fmt.Errorf("tortest: shipped secret_id_key of %s: %w", nd.Nickname, err)
	}
	if nd.Role == Authority {
		if nd.V3Ident, err = signAuthorityCert(ctx, gencert, nd.DataDir, fmt.Sprintf("%s:%d", loopback, nd.DirPort)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// signAuthorityCert makes a new authority certificate for dirAddr from the
// identity and signing keys already in dataDir/keys, and returns the v3
// identity fingerprint.
func signAuthorityCert(ctx context.Context, gencert, dataDir, dirAddr string) (string, error) {
	keys := filepath.Join(dataDir, "keys")
	return runGencert(ctx, gencert, dataDir, "--reuse",
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", filepath.Join(keys, "authority_certificate"),
		"-m", "12",
		"-a", dirAddr)
}

// rsaFingerprint returns tor's fingerprint of an RSA identity key in PEM:
// the SHA-1 of the DER (PKCS #1) encoding of its public half.
func rsaFingerprint(pemKey []byte) (string, error) {
	blk, _ := pem.Decode(pemKey)
	if blk == nil || blk.Type != "RSA PRIVATE KEY" {
		return "", errors.New("not a PEM RSA private key")
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(x509.MarshalPKCS1PublicKey(&k.PublicKey))
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}
