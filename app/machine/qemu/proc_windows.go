package qemu

import (
	"os"
	"syscall"
)

// detached: Windows children do not share a terminal's signals.
func detached() *syscall.SysProcAttr { return nil }

// processAlive tells whether pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
