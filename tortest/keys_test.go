package tortest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateKeys = flag.Bool("update-keys", false, "regenerate the keys shipped in tortest/keys")

// Shipped key sets: enough for 3 authorities and 8 relays.
const (
	embeddedAuthorities = 3
	embeddedRelays      = 8
)

// TestEmbeddedKeys checks the shipped keys: every node of the shipped set
// has them, the fingerprint computed in Go is the one tor computes, and the
// authority keys sign a certificate for any DirPort. With -update-keys it
// first regenerates them with tor-gencert and tor --list-fingerprint.
func TestEmbeddedKeys(t *testing.T) {
	o := Options{}
	require.NoError(t, o.setDefaults())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var nodes []*Node
	for i := 0; i < embeddedAuthorities; i++ {
		nodes = append(nodes, &Node{Role: Authority, Nickname: fmt.Sprintf("auth%d", i), DirPort: 7000 + i})
	}
	for i := 0; i < embeddedRelays; i++ {
		nodes = append(nodes, &Node{Role: Relay, Nickname: fmt.Sprintf("relay%d", i)})
	}
	if *updateKeys {
		require.NoError(t, os.RemoveAll("keys"))
		for _, nd := range nodes {
			dir := t.TempDir()
			if nd.Role == Authority {
				_, err := makeAuthorityKeys(ctx, o.GencertPath, dir, "127.0.0.1:1")
				require.NoError(t, err)
			}
			_, err := makeRelayKeys(ctx, o.TorPath, dir, nd.Nickname)
			require.NoError(t, err)
			out := filepath.Join("keys", nd.Nickname)
			require.NoError(t, os.MkdirAll(out, 0o755))
			for _, f := range embeddedKeyFiles[nd.Role] {
				b, err := os.ReadFile(filepath.Join(dir, "keys", f))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(out, f), b, 0o644))
			}
		}
		t.Log("regenerated tortest/keys; rebuild to embed them")
		return
	}
	for _, nd := range nodes {
		nd.DataDir = t.TempDir()
		ok, err := installEmbeddedKeys(ctx, o.GencertPath, nd)
		require.NoError(t, err)
		require.True(t, ok, nd.Nickname)
		require.Regexp(t, hexFP, nd.Fingerprint)
		if nd.Role == Authority {
			require.Regexp(t, hexFP, nd.V3Ident)
			cert, err := os.ReadFile(filepath.Join(nd.DataDir, "keys", "authority_certificate"))
			require.NoError(t, err)
			require.Contains(t, string(cert), fmt.Sprintf("\ndir-address 127.0.0.1:%d\n", nd.DirPort))
		}
	}
	// tor computes the same fingerprint from the shipped key (one node is
	// enough to check rsaFingerprint; --list-fingerprint costs 0.3 s).
	for _, nd := range []*Node{nodes[0], nodes[embeddedAuthorities]} {
		fp, err := makeRelayKeys(ctx, o.TorPath, nd.DataDir, nd.Nickname)
		require.NoError(t, err)
		require.Equal(t, fp, nd.Fingerprint, nd.Nickname)
	}
	// A node outside the shipped set has none.
	ok, err := installEmbeddedKeys(ctx, o.GencertPath, &Node{Role: Relay, Nickname: "relay99", DataDir: t.TempDir()})
	require.NoError(t, err)
	require.False(t, ok)
}
