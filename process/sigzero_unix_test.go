//go:build unix

package process

import "syscall"

var sigZero = syscall.Signal(0)
