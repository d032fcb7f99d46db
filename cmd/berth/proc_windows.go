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
