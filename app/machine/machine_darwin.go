package machine

import "fmt"

// DefaultDriver names the hypervisor driver Berth uses on this OS.
func DefaultDriver() (string, error) {
	return "", fmt.Errorf("vz driver: %w: not available yet", ErrNotAvailable)
}
