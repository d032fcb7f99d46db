//go:build !linux

package dns

import (
	"errors"
	"fmt"
	"net/netip"
)

// Listen serves inside a Linux network namespace; elsewhere it fails with
// [errors.ErrUnsupported]. [Handler] works everywhere.
func Listen(nsPath string, addr netip.AddrPort, cfg Config) (*Server, error) {
	return nil, fmt.Errorf("dns: listen on %s in network namespace %s: %w", addr, nsPath, errors.ErrUnsupported)
}
