package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RunningPID reads the pid file QEMU writes in stateDir and tells whether
// that process is alive: another Berth process may own the VM. It returns 0
// and no error when no QEMU runs for stateDir.
func RunningPID(stateDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read qemu pid file: %w", err)
	}
	pid, err := parsePID(string(b))
	if err != nil {
		return 0, fmt.Errorf("qemu pid file %s: %w", filepath.Join(stateDir, pidFile), err)
	}
	if !processAlive(pid) {
		return 0, nil
	}
	if !isQEMU(pid) {
		return 0, nil // the pid was reused by another program
	}
	return pid, nil
}

// parsePID parses the decimal pid QEMU writes (with a newline).
func parsePID(s string) (int, error) {
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("not a pid: %q", s)
	}
	return pid, nil
}

// isQEMU tells whether pid runs a QEMU system emulator, where /proc can
// tell; elsewhere it trusts the pid.
func isQEMU(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return true
	}
	exe, _, _ := strings.Cut(string(b), "\x00")
	return strings.HasPrefix(filepath.Base(exe), "qemu-system-")
}
