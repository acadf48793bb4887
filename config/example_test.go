package config_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/gotorcon/tor/config"
	"github.com/gotorcon/tor/control"
)

// Build a launch's torrc offline: options, a list and a hidden service,
// rendered with the escaping tor reads back byte for byte.
func ExampleNew() {
	cfg := config.New()
	cfg.Set("SocksPort", "auto")
	cfg.Set("ContactInfo", `ops team "#1"`)
	cfg.Set("Log", "notice stdout")
	cfg.Append("Log", "info file /var/log/tor/info.log")
	cfg.AddHiddenService(config.HiddenService{
		Dir:   "/var/lib/app/hs",
		Ports: []string{"80 127.0.0.1:8080"},
	})
	fmt.Print(cfg.Torrc())
	// Output:
	// SocksPort auto
	// ContactInfo "ops team \"#1\""
	// Log notice stdout
	// Log info file /var/log/tor/info.log
	// HiddenServiceDir /var/lib/app/hs
	// HiddenServicePort 80 127.0.0.1:8080
}

// Follow a running tor's configuration, change it atomically and persist
// it. conn is an authenticated control connection.
func ExampleLoad() {
	ctx := context.Background()
	var conn *control.Conn // from control.Connect, or a launched tor

	cfg, err := config.Load(ctx, conn, nil) // a handful of round trips, then CONF_CHANGED keeps it current
	if err != nil {
		log.Fatal(err)
	}
	defer cfg.Close()

	d, _ := cfg.Get("MaxCircuitDirtiness").Duration()
	fmt.Println("circuits are reused for", d)

	cfg.Set("ContactInfo", "ops@example.org")
	cfg.Append("MapAddress", "www.example.org www.example.com")
	if err := cfg.Apply(ctx); err != nil { // one SETCONF: all of it or none
		var refused *config.ApplyError
		if errors.As(err, &refused) {
			log.Fatalf("tor refused %v: %d %s", refused.Options, refused.Code, refused.Text)
		}
		log.Fatal(err)
	}
	// SAVECONF, refused unless tor runs from a torrc this library wrote.
	if err := cfg.Save(ctx, config.SaveOptions{}); errors.Is(err, config.ErrNotOurTorrc) {
		log.Print("not saving into somebody else's torrc")
	}
}
