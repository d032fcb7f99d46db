//go:build !linux && !darwin && !windows

package settings

// hostMemoryMiB is unknown here, so memory is not checked against it.
func hostMemoryMiB() int { return 0 }
