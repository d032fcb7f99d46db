//go:build !linux && !darwin && !windows

package machine

import (
	"fmt"
	"runtime"
)

// DefaultDriver names the hypervisor driver Berth uses on this OS.
func DefaultDriver() (DriverName, error) {
	return "", fmt.Errorf("%s: %w", runtime.GOOS, ErrNotAvailable)
}
