//go:build !windows

package desktop

import (
	"errors"
	"syscall"
)

// processAlive tells whether pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
