package onion

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
	"github.com/gotorcon/tor/internal/testtor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOfflineDefenseFacts writes down what tor 0.4.9.11 accepts for the
// DoS defenses of onion services, on ADD_ONION and as HiddenService*
// options (probed offline; the library's checks follow these facts).
func TestOfflineDefenseFacts(t *testing.T) {
	tor := testtor.Start(t, testtor.Options{})
	c := tor.Connect(t)
	ctx := testCtx(t)

	t.Run("ADD_ONION", func(t *testing.T) {
		add := func(args string) error {
			r, err := c.Request(ctx, "ADD_ONION NEW:ED25519-V3 Flags=DiscardPK "+args+" Port=80,127.0.0.1:1")
			if err == nil {
				// DEL_ONION the service so that the next one is new.
				for _, l := range r.Lines {
					if id, ok := strings.CutPrefix(l.Text, "ServiceID="); ok {
						require.NoError(t, c.DelOnion(ctx, id))
					}
				}
			}
			return err
		}
		for _, ok := range []string{
			"PoWDefensesEnabled=1",
			"PoWDefensesEnabled=0",
			"powdefensesenabled=1", // keywords are case-insensitive
			"PoWDefensesEnabled=1 PoWQueueRate=10 PoWQueueBurst=20",
			"PoWDefensesEnabled=1 PoWQueueRate=0 PoWQueueBurst=0",
			"PoWDefensesEnabled=1 PoWQueueRate=4294967295 PoWQueueBurst=4294967295",
			// Not refused here (tor then runs the queue without a rate
			// limit); the library refuses it as tor does for on-disk
			// services.
			"PoWDefensesEnabled=1 PoWQueueRate=100 PoWQueueBurst=10",
			"PoWQueueRate=10", // rate without enabling: accepted, unused
			"MaxStreams=65535 Flags=DiscardPK,MaxStreamsCloseCircuit",
		} {
			assert.NoError(t, add(ok), ok)
		}
		for args, text := range map[string]string{
			"PoWDefensesEnabled=2":                          "Invalid PoWDefensesEnabled",
			"PoWDefensesEnabled=yes":                        "Invalid PoWDefensesEnabled",
			"PoWDefensesEnabled=1 PoWQueueRate=-1":          "Invalid PoWQueueRate",
			"PoWDefensesEnabled=1 PoWQueueRate=4294967296":  "Invalid PoWQueueRate",
			"PoWDefensesEnabled=1 PoWQueueBurst=4294967296": "Invalid PoWQueueBurst",
			// No ADD_ONION argument for the other limits on tor 0.4.9.
			"NumIntroductionPoints=5":              `Unrecognized keyword argument "NumIntroductionPoints"`,
			"EnableIntroDoSDefense=1":              `Unrecognized keyword argument "EnableIntroDoSDefense"`,
			"IntroDoSRatePerSec=1":                 `Unrecognized keyword argument "IntroDoSRatePerSec"`,
			"ExportCircuitID=haproxy":              `Unrecognized keyword argument "ExportCircuitID"`,
			"HiddenServiceExportCircuitID=haproxy": `Unrecognized keyword argument "HiddenServiceExportCircuitID"`,
		} {
			err := add(args)
			require.Error(t, err, args)
			assert.ErrorIs(t, err, control.ErrArgumentSyntax, args)
			assert.ErrorContains(t, err, text, args)
		}
	})

	t.Run("HiddenService options", func(t *testing.T) {
		dir := filepath.Join(tor.Dir, "hs")
		set := func(opts ...string) error {
			e := []control.ConfEntry{{Key: "HiddenServiceDir", Value: dir}, {Key: "HiddenServicePort", Value: "80 127.0.0.1:1"}}
			for _, o := range opts {
				k, v, _ := strings.Cut(o, " ")
				e = append(e, control.ConfEntry{Key: k, Value: v})
			}
			return c.SetConf(ctx, e...)
		}
		for _, ok := range [][]string{
			{"HiddenServicePoWDefensesEnabled 1", "HiddenServicePoWQueueRate 2147483647", "HiddenServicePoWQueueBurst 2147483647"},
			{"HiddenServicePoWDefensesEnabled 1", "HiddenServicePoWQueueRate 0", "HiddenServicePoWQueueBurst 0"},
			{"HiddenServicePoWQueueRate 100", "HiddenServicePoWQueueBurst 10"}, // checked only with PoW on
			{"HiddenServiceEnableIntroDoSDefense 1", "HiddenServiceEnableIntroDoSRatePerSec 0", "HiddenServiceEnableIntroDoSBurstPerSec 0"},
			{"HiddenServiceEnableIntroDoSDefense 1", "HiddenServiceEnableIntroDoSRatePerSec 2147483647", "HiddenServiceEnableIntroDoSBurstPerSec 2147483647"},
			{"HiddenServiceNumIntroductionPoints 3"},
			{"HiddenServiceNumIntroductionPoints 20"},
			{"HiddenServiceExportCircuitID haproxy"},
			{"HiddenServiceExportCircuitID HAProxy"},
			{"HiddenServiceExportCircuitID none"},
			{"HiddenServiceMaxStreams 65535", "HiddenServiceMaxStreamsCloseCircuit 1"},
		} {
			assert.NoError(t, set(ok...), "%q", ok)
		}
		// Each refusal is 513 "Failed to configure rendezvous options"; the
		// reason is only in tor's log.
		for _, bad := range [][]string{
			{"HiddenServicePoWDefensesEnabled 1", "HiddenServicePoWQueueRate 100", "HiddenServicePoWQueueBurst 10"},
			{"HiddenServicePoWQueueRate 2147483648"},
			{"HiddenServicePoWQueueRate -1"},
			{"HiddenServiceEnableIntroDoSDefense 1", "HiddenServiceEnableIntroDoSRatePerSec 10", "HiddenServiceEnableIntroDoSBurstPerSec 5"},
			{"HiddenServiceEnableIntroDoSRatePerSec 2147483648"},
			{"HiddenServiceNumIntroductionPoints 2"}, // the minimum is 3, not 1
			{"HiddenServiceNumIntroductionPoints 21"},
			{"HiddenServiceExportCircuitID foo"},
			{"HiddenServiceMaxStreams 65536"},
		} {
			err := set(bad...)
			assert.ErrorIs(t, err, control.ErrUnrecognizedArgument, "%q", bad)
		}
		require.NoError(t, c.ResetConf(ctx, control.ConfEntry{Key: "HiddenServiceDir", Unset: true}))
	})

	t.Run("through the library", func(t *testing.T) {
		l, err := (&ListenConfig{Wait: WaitNone, PoW: PoW{Mode: PoWOn, QueueRate: 10, QueueBurst: 20}}).Listen(ctx, c)
		require.NoError(t, err)
		assert.True(t, l.PoW())
		require.NoError(t, l.Close())

		dir := filepath.Join(tor.Dir, "hs2")
		l, err = (&DirConfig{Dir: dir, Wait: WaitNone, PoW: PoW{Mode: PoWOn, QueueRate: 5, QueueBurst: 10},
			IntroDoS: &IntroDoS{Rate: 3, Burst: 6}, IntroPoints: 5, ExportCircuitID: true,
			MaxStreams: 4, MaxStreamsCloseCircuit: true}).Listen(ctx, c)
		require.NoError(t, err)
		var got *config.HiddenService
		for _, hs := range hiddenServices(t, c) {
			if hs.Dir == dir {
				got = &hs
			}
		}
		require.NotNil(t, got)
		for k, want := range map[string]string{
			"HiddenServicePoWDefensesEnabled": "1", "HiddenServicePoWQueueRate": "5", "HiddenServicePoWQueueBurst": "10",
			"HiddenServiceEnableIntroDoSDefense": "1", "HiddenServiceEnableIntroDoSRatePerSec": "3", "HiddenServiceEnableIntroDoSBurstPerSec": "6",
			"HiddenServiceNumIntroductionPoints": "5", "HiddenServiceExportCircuitID": "haproxy",
			"HiddenServiceMaxStreams": "4", "HiddenServiceMaxStreamsCloseCircuit": "1",
		} {
			v, ok := got.Option(k)
			assert.True(t, ok, k)
			assert.Equal(t, want, v, k)
		}
		require.NoError(t, l.Close())
	})
}

// TestOfflineMetricsPortNeedsAPort: tor takes no "auto" for MetricsPort
// (unlike SocksPort and ControlPort); it refuses to start.
func TestOfflineMetricsPortNeedsAPort(t *testing.T) {
	tt, err := testtor.New(testtor.Options{Extra: []config.Option{{Key: "MetricsPort", Value: "127.0.0.1:auto"}}})
	if tt != nil {
		tt.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Port "auto" out of range`)
}
