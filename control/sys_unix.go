//go:build unix && (!linux || race)

package control

import "syscall"

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket
// through package syscall: raw system calls (sys_raw.go) are used only on
// linux, and not under the race detector, which learns from syscall.Read
// and syscall.Write that a write to a descriptor happens before a later
// read.
func sysRead(fd uintptr, b []byte) (int, error)  { return syscall.Read(int(fd), b) }
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
