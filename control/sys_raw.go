//go:build linux && !race

package control

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a socket that package
// net has made non-blocking, so that they return at once (EAGAIN when they
// would block). They are raw system calls: syscall.Read and syscall.Write
// tell the scheduler that the goroutine enters a system call that may
// block, and on leaving it may have to get a P back; on a connection that
// pipelines many small commands that bookkeeping was a good part of the
// client's CPU time per command (and it wakes the runtime's sysmon thread
// whenever the process was idle, which costs most when the machine is
// busy). A non-blocking call does not need it.
//
// Under the race detector they are syscall.Read and syscall.Write (see
// sys_unix.go): those also tell the detector that a write to a descriptor
// happens before a later read, which tests whose fake tor shares memory
// with the test through the socket rely on.
func sysRead(fd uintptr, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func sysWrite(fd uintptr, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
