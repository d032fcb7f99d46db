package settings

import "golang.org/x/sys/unix"

// hostMemoryMiB is hw.memsize; 0 when it cannot be read.
func hostMemoryMiB() int {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return int(n >> 20)
}
