// Package config holds tor's configuration on the Go side.
//
// [Torrc] is an ordered list of torrc options that renders and escapes
// values the way tor reads them back; every package of this module that
// writes a torrc (process, launch, tortest) builds it with this one type.
package config
