// Package vz is Berth's driver for Apple's Virtualization framework on
// macOS (through github.com/Code-Hex/vz/v3, which nothing else in Berth
// imports). It owns the translation of a machine.Config into a
// Virtualization machine: the Linux boot loader with the kernel, initrd and
// command line, the sparse data disk on virtio-blk, one virtiofs device
// carrying every shared folder as a directory of one multiple-directory
// share, the Rosetta share for x86_64 binaries on Apple silicon, the
// virtio-socket device the guest agent's channel runs over, NAT networking,
// entropy, the memory balloon and the serial console. It also owns the life
// of that machine as seen by Berth: states followed from the framework's
// notifications, a graceful stop that turns into a forced one when the
// caller stops waiting, crash detection, and setting the guest clock again
// when the Mac wakes from sleep.
//
// Only the files named *_darwin*.go touch the framework, and they do no
// more than build its objects from a plan (plan.go) and relay its events.
// Everything else — checking the Config, the command line, the share
// names, the state machine, the stop sequence, the channel's connections,
// the wake handling — is portable and tested on any OS against a fake
// machine (the backend interface in vm.go). On other systems New reports
// machine.ErrNotAvailable.
package vz

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

// Driver is the Virtualization framework hypervisor. The zero value is
// ready to use.
type Driver struct {
	// Rosetta runs linux/amd64 binaries in the arm64 VM through Apple's
	// Rosetta: a second virtiofs device shares the Rosetta runtime and
	// the guest registers it with binfmt_misc (berth.rosetta on the
	// kernel command line). It needs Apple silicon, macOS 13 and Rosetta
	// installed (`softwareupdate --install-rosetta`); on an Intel Mac
	// amd64 binaries run natively and the setting is ignored.
	Rosetta bool
	// WakeCheck is how often the VM compares the host's wall clock with
	// its monotonic clock to notice that the Mac slept (the monotonic
	// clock stops during sleep), and then sets the guest clock. Zero
	// means DefaultWakeCheck; a negative value turns the check off,
	// leaving VM.HostDidWake to a sleep/wake notification.
	WakeCheck time.Duration
	// Log receives the driver's logs; nil discards them.
	Log *slog.Logger
}

// DefaultWakeCheck is the interval of the sleep check when
// Driver.WakeCheck is zero.
const DefaultWakeCheck = 2 * time.Second

var _ machine.Hypervisor = Driver{}

// Name returns "vz".
func (Driver) Name() string { return string(machine.DriverVZ) }

// New checks cfg against this Mac and returns a stopped VM. It reports
// machine.ErrNotAvailable on other systems and on macOS before 13.
func (d Driver) New(cfg machine.Config) (machine.VM, error) {
	host, err := probeHost()
	if err != nil {
		return nil, fmt.Errorf("vz driver: %w", err)
	}
	return d.newVM(cfg, host, newBackend)
}

// newVM is New with the host and the backend constructor given, as the
// tests give them.
func (d Driver) newVM(cfg machine.Config, host hostInfo, nb newBackendFunc) (*VM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkConfig(cfg, host, d.Rosetta); err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("vm", cfg.Name)
	if cfg.Subnet != "" {
		// The framework's NAT takes its network from the system
		// (com.apple.vmnet's Shared_Net_Address), not from a VM.
		log.Warn("vz: the NAT network's subnet is the system's; the VM subnet setting is ignored", "subnet", cfg.Subnet)
	}
	rosetta := d.Rosetta && host.Arch == machine.ArchARM64
	if d.Rosetta && !rosetta {
		log.Info("vz: Rosetta asked for on an Intel Mac, where amd64 binaries run natively; ignored")
	}
	wake := d.WakeCheck
	if wake == 0 {
		wake = DefaultWakeCheck
	}
	return &VM{
		cfg:        cfg,
		host:       host,
		rosetta:    rosetta,
		wakeCheck:  wake,
		newBackend: nb,
		log:        log,
		state:      machine.StateStopped,
		done:       closedChan(),
	}, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
