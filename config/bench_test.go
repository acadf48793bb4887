package config_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/internal/testtor"
)

// BenchmarkLoad measures loading every option of a real tor (names, types,
// defaults and values; no subscription).
func BenchmarkLoad(b *testing.B) {
	tt := testtor.Start(b, testtor.Options{NoCookie: true})
	conn := tt.Connect(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, err := config.Load(ctx, conn, &config.LoadOptions{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Close()
	}
}

// BenchmarkGetConfPerOption is the approach Load avoids: one GETCONF per
// option, for comparison with BenchmarkLoad.
func BenchmarkGetConfPerOption(b *testing.B) {
	tt := testtor.Start(b, testtor.Options{NoCookie: true})
	conn := tt.Connect(b)
	ctx := context.Background()
	cfg, err := config.Load(ctx, conn, &config.LoadOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	var keys []string
	for _, n := range cfg.Schema().Names() {
		if o, _ := cfg.Schema().Lookup(n); o.Group == "" {
			keys = append(keys, n)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, k := range keys {
			if _, err := conn.GetConf(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkApply measures one staged change applied (SETCONF, then the
// GETCONF that reads it back), with the CONF_CHANGED sync running.
func BenchmarkApply(b *testing.B) {
	tt := testtor.Start(b, testtor.Options{NoCookie: true})
	ctx := context.Background()
	cfg, err := config.Load(ctx, tt.Connect(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cfg.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cfg.Set("ContactInfo", "bench "+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		if err := cfg.Apply(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
