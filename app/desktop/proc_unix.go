//go:build !windows

package desktop

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processAlive tells whether pid exists and, where /proc tells, is not a
// zombie waiting to be reaped.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
