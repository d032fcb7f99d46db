package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Load installs prog as a seccomp filter of the calling thread (and what it
// forks or execs). The caller must have no_new_privs set or CAP_SYS_ADMIN,
// and should hold its OS thread locked.
func Load(prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return fmt.Errorf("seccomp: empty program")
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: load filter of %d instructions: %w", len(filter), e)
	}
	return nil
}
