//go:build darwin && amd64

package vz

import (
	"fmt"

	avf "github.com/Code-Hex/vz/v3"

	"github.com/berthdesktop/berth/app/machine"
)

// rosettaHost: an Intel Mac runs amd64 binaries itself.
func rosettaHost() rosettaAvailability { return rosettaNotSupported }

// rosettaDevice: never asked for on an Intel Mac (the plan has no Rosetta
// there).
func rosettaDevice(string) (avf.DirectorySharingDeviceConfiguration, error) {
	return nil, fmt.Errorf("%w: Rosetta runs on Apple silicon only", machine.ErrNotAvailable)
}
