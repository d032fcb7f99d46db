package main

import (
	"os"
	"syscall"
)

func detached() *syscall.SysProcAttr { return nil }

func terminate(pid int) { kill(pid) }

func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// windowChanges: Windows consoles send no window-change signal; the size
// taken at the start stays.
func windowChanges(ch chan<- struct{}) (stop func()) { return func() {} }
