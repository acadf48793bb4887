package tortest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
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
	ctx, cancel := context.WithTimeout(ctx, keygenTimeout)
	defer cancel()
	cert := filepath.Join(keys, "authority_certificate")
	cmd := exec.CommandContext(ctx, gencert,
		"--create-identity-key", "--passphrase-fd", "0",
		"-i", filepath.Join(keys, "authority_identity_key"),
		"-s", filepath.Join(keys, "authority_signing_key"),
		"-c", cert,
		"-m", "12",
		"-a", dirAddr)
	cmd.Dir = dataDir
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
