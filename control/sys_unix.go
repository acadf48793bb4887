//go:build unix && !linux

package control

import "syscall"

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket
// (see sys_linux.go; elsewhere they go through package syscall as usual).
func sysRead(fd uintptr, b []byte) (int, error)  { return syscall.Read(int(fd), b) }
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
