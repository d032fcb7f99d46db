package machine

import "fmt"

// DefaultDriver names the hypervisor driver Berth uses on this OS.
func DefaultDriver() (DriverName, error) {
	return DriverHyperV, fmt.Errorf("%s driver: %w: not available yet", DriverHyperV, ErrNotAvailable)
}
