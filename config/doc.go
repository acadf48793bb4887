// Package config holds tor's configuration on the Go side.
//
// [Torrc] is an ordered list of torrc options that renders and escapes
// values the way tor reads them back; every package of this module that
// writes a torrc (process, launch, tortest) builds it with this one type.
//
// [TorConfig] is the configuration as a whole. Built offline ([New],
// [NewWithSchema]) it produces the [Torrc] of a launch, with option names
// checked against the tor binary ([SchemaFromBinary]). Loaded from a
// running tor ([Load], in four round trips whatever the number of options)
// it mirrors tor's values with their types ([Value]), keeps multi-valued
// options as ordered lists and hidden services as complete groups
// ([HiddenService]), and follows other controllers' changes through
// CONF_CHANGED. Changes are staged and sent by [TorConfig.Apply] as one
// atomic SETCONF; [TorConfig.Reset] is RESETCONF, and [TorConfig.Save] is
// SAVECONF, refused unless tor runs from a torrc this package wrote
// ([WriteOwnedTorrc]; [SaveOptions].AllowUnowned overrides).
package config
