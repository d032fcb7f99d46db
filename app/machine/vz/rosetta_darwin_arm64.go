//go:build darwin && arm64

package vz

import (
	avf "github.com/Code-Hex/vz/v3"
)

// rosettaHost is whether Rosetta for Linux can be shared on this Mac.
func rosettaHost() rosettaAvailability {
	switch avf.LinuxRosettaDirectoryShareAvailability() {
	case avf.LinuxRosettaAvailabilityInstalled:
		return rosettaInstalled
	case avf.LinuxRosettaAvailabilityNotInstalled:
		return rosettaNotInstalled
	}
	return rosettaNotSupported
}

// rosettaDevice is the virtiofs device sharing the Rosetta runtime under
// tag; the guest mounts it and registers its rosetta binary with
// binfmt_misc for x86_64 ELF files.
func rosettaDevice(tag string) (avf.DirectorySharingDeviceConfiguration, error) {
	share, err := avf.NewLinuxRosettaDirectoryShare()
	if err != nil {
		return nil, err
	}
	dev, err := avf.NewVirtioFileSystemDeviceConfiguration(tag)
	if err != nil {
		return nil, err
	}
	dev.SetDirectoryShare(share)
	return dev, nil
}
