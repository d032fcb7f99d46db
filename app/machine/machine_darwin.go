package machine

import "fmt"

// DefaultDriver names the hypervisor driver Berth uses on this OS.
func DefaultDriver() (DriverName, error) {
	return DriverVZ, fmt.Errorf("%s driver: %w: not available yet", DriverVZ, ErrNotAvailable)
}
