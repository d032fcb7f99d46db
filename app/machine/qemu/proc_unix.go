//go:build !windows

package qemu

import (
	"errors"
	"syscall"
)

// detached runs a child in its own session: a terminal's signals to
// Berth's process group do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// processAlive tells whether pid exists (EPERM: it exists under another
// user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
