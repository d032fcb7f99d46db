//go:build darwin

package vz

// This file and rosetta_darwin_*.go are the only ones that touch the
// Virtualization framework: they build its objects from a plan and relay
// its state changes. Every decision is made in plan.go and vm.go.

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"

	avf "github.com/Code-Hex/vz/v3"

	"github.com/berthdesktop/berth/app/machine"
)

// probeHost reads the macOS version, the framework's limits and Rosetta's
// availability.
func probeHost() (hostInfo, error) {
	s, err := syscall.Sysctl("kern.osproductversion")
	if err != nil {
		return hostInfo{}, fmt.Errorf("%w: read the macOS version: %w", machine.ErrNotAvailable, err)
	}
	ver, err := parseMacOSVersion(s)
	if err != nil {
		return hostInfo{}, fmt.Errorf("%w: %w", machine.ErrNotAvailable, err)
	}
	h := hostInfo{Arch: machine.Arch(runtime.GOARCH), MacOS: ver}
	if t, err := syscall.SysctlUint32("sysctl.proc_translated"); err == nil && t == 1 {
		h.Translated = true
	}
	if err := checkHost(h); err != nil {
		return h, err
	}
	h.MinCPUs = avf.VirtualMachineConfigurationMinimumAllowedCPUCount()
	h.MaxCPUs = avf.VirtualMachineConfigurationMaximumAllowedCPUCount()
	h.MinMemory = avf.VirtualMachineConfigurationMinimumAllowedMemorySize()
	h.MaxMemory = avf.VirtualMachineConfigurationMaximumAllowedMemorySize()
	h.Rosetta = rosettaHost()
	return h, nil
}

// fromVZ maps the framework's state.
func fromVZ(s avf.VirtualMachineState) hvState {
	switch s {
	case avf.VirtualMachineStateStopped:
		return hvStopped
	case avf.VirtualMachineStateRunning:
		return hvRunning
	case avf.VirtualMachineStatePaused:
		return hvPaused
	case avf.VirtualMachineStateError:
		return hvError
	case avf.VirtualMachineStateStarting:
		return hvStarting
	case avf.VirtualMachineStatePausing:
		return hvPausing
	case avf.VirtualMachineStateResuming:
		return hvResuming
	case avf.VirtualMachineStateStopping:
		return hvStopping
	case avf.VirtualMachineStateSaving:
		return hvSaving
	case avf.VirtualMachineStateRestoring:
		return hvRestoring
	}
	return hvError
}

// newBackend builds the framework's configuration from p, validates it and
// creates the machine.
func newBackend(p plan) (backend, error) {
	cfg, err := configuration(p)
	if err != nil {
		return nil, err
	}
	if ok, err := cfg.Validate(); err != nil || !ok {
		if err == nil {
			err = errors.New("not valid")
		}
		// A binary without the com.apple.security.virtualization
		// entitlement fails here.
		return nil, fmt.Errorf("%w: the Virtualization framework refused the configuration: %w", machine.ErrInvalidConfig, err)
	}
	vm, err := avf.NewVirtualMachine(cfg)
	if err != nil {
		return nil, fmt.Errorf("create the virtual machine: %w", err)
	}
	b := &vzBackend{vm: vm, states: make(chan hvState, 16), quit: make(chan struct{})}
	go b.relay()
	return b, nil
}

// configuration translates p into the framework's objects.
func configuration(p plan) (*avf.VirtualMachineConfiguration, error) {
	opts := []avf.LinuxBootLoaderOption{avf.WithCommandLine(p.Cmdline)}
	if p.Initrd != "" {
		opts = append(opts, avf.WithInitrd(p.Initrd))
	}
	boot, err := avf.NewLinuxBootLoader(p.Kernel, opts...)
	if err != nil {
		return nil, fmt.Errorf("boot loader for %s: %w", p.Kernel, err)
	}
	cfg, err := avf.NewVirtualMachineConfiguration(boot, p.CPUs, p.MemoryBytes)
	if err != nil {
		return nil, fmt.Errorf("machine configuration: %w", err)
	}

	if p.ConsoleLog != "" {
		att, err := avf.NewFileSerialPortAttachment(p.ConsoleLog, false)
		if err != nil {
			return nil, fmt.Errorf("console log %s: %w", p.ConsoleLog, err)
		}
		port, err := avf.NewVirtioConsoleDeviceSerialPortConfiguration(att)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		cfg.SetSerialPortsVirtualMachineConfiguration([]*avf.VirtioConsoleDeviceSerialPortConfiguration{port})
	}

	if p.Disk != "" {
		att, err := avf.NewDiskImageStorageDeviceAttachmentWithCacheAndSync(p.Disk, false,
			avf.DiskImageCachingModeCached, avf.DiskImageSynchronizationModeFsync)
		if err != nil {
			return nil, fmt.Errorf("data disk %s: %w", p.Disk, err)
		}
		blk, err := avf.NewVirtioBlockDeviceConfiguration(att)
		if err != nil {
			return nil, fmt.Errorf("data disk %s: %w", p.Disk, err)
		}
		cfg.SetStorageDevicesVirtualMachineConfiguration([]avf.StorageDeviceConfiguration{blk})
	}

	nat, err := avf.NewNATNetworkDeviceAttachment()
	if err != nil {
		return nil, fmt.Errorf("NAT network: %w", err)
	}
	nic, err := avf.NewVirtioNetworkDeviceConfiguration(nat)
	if err != nil {
		return nil, fmt.Errorf("network device: %w", err)
	}
	mac, err := avf.NewMACAddress(p.MAC)
	if err != nil {
		return nil, fmt.Errorf("network device MAC %s: %w", p.MAC, err)
	}
	nic.SetMACAddress(mac)
	cfg.SetNetworkDevicesVirtualMachineConfiguration([]*avf.VirtioNetworkDeviceConfiguration{nic})

	rng, err := avf.NewVirtioEntropyDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("entropy device: %w", err)
	}
	cfg.SetEntropyDevicesVirtualMachineConfiguration([]*avf.VirtioEntropyDeviceConfiguration{rng})

	balloon, err := avf.NewVirtioTraditionalMemoryBalloonDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("memory balloon: %w", err)
	}
	cfg.SetMemoryBalloonDevicesVirtualMachineConfiguration([]avf.MemoryBalloonDeviceConfiguration{balloon})

	sock, err := avf.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("virtio-socket device: %w", err)
	}
	cfg.SetSocketDevicesVirtualMachineConfiguration([]avf.SocketDeviceConfiguration{sock})

	var fs []avf.DirectorySharingDeviceConfiguration
	if len(p.Shares) > 0 {
		dirs := make(map[string]*avf.SharedDirectory, len(p.Shares))
		for _, s := range p.Shares {
			d, err := avf.NewSharedDirectory(s.HostPath, s.ReadOnly)
			if err != nil {
				return nil, fmt.Errorf("shared folder %s (%s): %w", s.HostPath, s.Name, err)
			}
			dirs[s.Name] = d
		}
		share, err := avf.NewMultipleDirectoryShare(dirs)
		if err != nil {
			return nil, fmt.Errorf("shared folders: %w", err)
		}
		dev, err := avf.NewVirtioFileSystemDeviceConfiguration(shareTag)
		if err != nil {
			return nil, fmt.Errorf("virtiofs device %s: %w", shareTag, err)
		}
		dev.SetDirectoryShare(share)
		fs = append(fs, dev)
	}
	if p.Rosetta {
		dev, err := rosettaDevice(rosettaTag)
		if err != nil {
			return nil, fmt.Errorf("Rosetta share: %w", err)
		}
		fs = append(fs, dev)
	}
	if len(fs) > 0 {
		cfg.SetDirectorySharingDevicesVirtualMachineConfiguration(fs)
	}
	return cfg, nil
}

// vzBackend is a framework machine.
type vzBackend struct {
	vm        *avf.VirtualMachine
	states    chan hvState
	quit      chan struct{}
	closeOnce sync.Once
}

// relay passes the framework's state notifications on until Close.
func (b *vzBackend) relay() {
	in := b.vm.StateChangedNotify()
	for {
		select {
		case <-b.quit:
			return
		case s := <-in:
			select {
			case b.states <- fromVZ(s):
			case <-b.quit:
				return
			}
		}
	}
}

func (b *vzBackend) Start() error { return b.vm.Start() }

func (b *vzBackend) RequestStop() error {
	ok, err := b.vm.RequestStop()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the guest cannot be asked to stop in state %s", fromVZ(b.vm.State()))
	}
	return nil
}

func (b *vzBackend) Stop() error { return b.vm.Stop() }

func (b *vzBackend) States() <-chan hvState { return b.states }

func (b *vzBackend) Connect(port uint32) (net.Conn, error) {
	devs := b.vm.SocketDevices()
	if len(devs) == 0 {
		return nil, errors.New("the machine has no virtio-socket device")
	}
	c, err := devs[0].Connect(port)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (b *vzBackend) Close() { b.closeOnce.Do(func() { close(b.quit) }) }
