//go:build !darwin

package vz

import (
	"fmt"
	"runtime"

	"github.com/berthdesktop/berth/app/machine"
)

// probeHost: the Virtualization framework is macOS's.
func probeHost() (hostInfo, error) {
	return hostInfo{}, fmt.Errorf("%w: the Virtualization framework is macOS only (this is %s)", machine.ErrNotAvailable, runtime.GOOS)
}

func newBackend(plan) (backend, error) {
	return nil, fmt.Errorf("%w: the Virtualization framework is macOS only (this is %s)", machine.ErrNotAvailable, runtime.GOOS)
}
