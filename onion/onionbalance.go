package onion

import (
	"fmt"

	"github.com/gotorcon/tor/config"
)

// setOnionbalance makes hs an Onionbalance instance of masters (nothing
// when masters is empty): it checks every address, writes ob_config into
// the service directory and sets HiddenServiceOnionBalanceInstance 1.
func setOnionbalance(hs *config.HiddenService, masters []string) error {
	if len(masters) == 0 {
		return nil
	}
	ids := make([]string, len(masters))
	for i, m := range masters {
		if _, err := ParseAddress(m); err != nil {
			return fmt.Errorf("onion: Onionbalance master address: %w", err)
		}
		ids[i] = ServiceID(m)
	}
	if err := config.WriteOnionbalanceConfig(hs.Dir, ids...); err != nil {
		return fmt.Errorf("onion: %w", err)
	}
	hs.SetOnionbalanceInstance(true)
	return nil
}
