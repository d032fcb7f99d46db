// Package qemu is Berth's QEMU driver: it turns a machine.Config into a QEMU
// command line (KVM when /dev/kvm is usable, else TCG), creates and grows
// the sparse data disk, runs QEMU's virtiofsd for each share, drives QEMU's
// monitor (QMP) for graceful and forced stops, reports the VM's state and
// detects a crash, and dials the guest agent over vhost-vsock or the
// virtio-serial fallback through app/hostlink.
package qemu

import (
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/berthdesktop/berth/app/machine"
)

// Driver is the QEMU hypervisor. The zero value finds its programs on PATH
// and at Debian's virtiofsd location.
type Driver struct {
	// QEMU overrides the system emulator binary (default
	// qemu-system-x86_64 or qemu-system-aarch64 by Config.Arch).
	QEMU string
	// Virtiofsd overrides the virtiofsd binary.
	Virtiofsd string
	// Accel forces the accelerator: "kvm" or "tcg"; empty probes the host
	// (KVM when it is usable, else TCG).
	Accel string
	// Log receives the driver's logs; nil discards them.
	Log *slog.Logger
}

// DefaultVirtiofsd is where Debian's QEMU packages install virtiofsd.
const DefaultVirtiofsd = "/usr/lib/qemu/virtiofsd"

var _ machine.Hypervisor = Driver{}

// Name returns "qemu".
func (Driver) Name() string { return "qemu" }

// New checks cfg and the programs it needs and returns a stopped VM.
func (d Driver) New(cfg machine.Config) (machine.VM, error) {
	return d.newVM(cfg)
}

func (d Driver) newVM(cfg machine.Config) (*VM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for i, s := range cfg.Shares {
		if s.ReadOnly {
			return nil, fmt.Errorf("%w: Shares[%d]: read-only shares are not supported by QEMU's virtiofsd", machine.ErrInvalidConfig, i)
		}
		if strings.Contains(s.HostPath, ",") {
			return nil, fmt.Errorf("%w: Shares[%d].HostPath %q has a comma, which virtiofsd options cannot carry", machine.ErrInvalidConfig, i, s.HostPath)
		}
	}
	switch d.Accel {
	case "", "kvm", "tcg":
	default:
		return nil, fmt.Errorf("%w: accelerator %q is not kvm or tcg", machine.ErrInvalidConfig, d.Accel)
	}
	qemu := d.QEMU
	if qemu == "" {
		qemu = binaryFor(cfg.Arch)
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w: %w", qemu, machine.ErrNotAvailable, err)
	}
	var fsd string
	if len(cfg.Shares) > 0 {
		fsd = d.Virtiofsd
		if fsd == "" {
			fsd = DefaultVirtiofsd
		}
		if fsd, err = exec.LookPath(fsd); err != nil {
			return nil, fmt.Errorf("find virtiofsd: %w: %w", machine.ErrNotAvailable, err)
		}
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VM{cfg: cfg, accel: d.Accel, qemu: qemuPath, virtiofsd: fsd, log: log.With("vm", cfg.Name), state: machine.StateStopped, done: closedChan()}, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
