//go:build !unix

package process

import "os"

// sigZero has no equivalent here; pidAlive only runs in unix tests.
var sigZero os.Signal
