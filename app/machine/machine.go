// Package machine owns the portable description of Berth's virtual machine
// (Config, plain data that any hypervisor driver can read), the small
// Hypervisor and VM interfaces every driver implements, the sentinel errors
// they return, and the explicit per-OS choice of driver.
//
// Drivers live in subpackages (qemu; later vz and hyperv) and receive
// everything they need as a Config: nothing here imports a hypervisor API.
package machine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// Arch is a guest CPU architecture in Go's naming.
type Arch string

// The architectures Berth builds VM images for.
const (
	ArchAMD64 Arch = "amd64"
	ArchARM64 Arch = "arm64"
)

// Channel ports of the guest agent (see docs/CHANNEL.md).
const (
	PortDocker     uint32 = 2375 // Docker Engine API, raw bytes
	PortControl    uint32 = 1024 // control API, HTTP/1.1 + JSON
	PortTunnel     uint32 = 1025 // published-port tunnel, target line then raw bytes
	PortShell      uint32 = 1026 // shell: request line, then framed terminal bytes
	PortFileEvents uint32 = 1027 // host file changes: JSON lines both ways (hostshare.FileEvent)
)

// Config is the whole description of a VM. It is plain data: a driver turns
// it into its own form (a QEMU command line, a vz configuration, a Hyper-V
// VM) and never needs anything else.
type Config struct {
	// Name identifies the VM to the user and in host-side names.
	Name string
	// CPUs is the number of virtual CPUs.
	CPUs int
	// MemoryMiB is the guest memory in MiB.
	MemoryMiB int
	// Disk is the data disk holding the engine's data root.
	Disk Disk
	// Shares are host folders exposed to the guest (virtiofs where the
	// hypervisor has it), mounted by the guest at GuestPath.
	Shares []Share
	// Kernel and Initrd are the boot files of the VM image.
	Kernel string
	Initrd string
	// Cmdline holds extra kernel command line words, appended after the
	// ones the driver writes itself.
	Cmdline []string
	// Subnet is the VM's network, an IPv4 CIDR such as 192.168.64.0/24;
	// "" is the driver's default.
	Subnet string
	// ConsoleLogPath receives the guest serial console.
	ConsoleLogPath string
	// StateDir holds the driver's runtime files (sockets, pid files). It
	// must be short enough for unix socket paths (about 100 bytes).
	StateDir string
	// Arch is the guest architecture; empty means the host's.
	Arch Arch
}

// Disk is a raw data disk image.
type Disk struct {
	// Path of the raw image file; created sparse when missing.
	Path string
	// SizeBytes is the size the file is created with or grown to. A disk is
	// never shrunk.
	SizeBytes int64
}

// Share is one host folder exposed to the guest.
type Share struct {
	// Tag names the share on the virtual device (virtiofs tag).
	Tag string
	// HostPath is the folder on the host.
	HostPath string
	// GuestPath is where the guest mounts it; Berth uses HostPath so that
	// bind mounts name the same path on both sides.
	GuestPath string
	// ReadOnly exports the share read-only.
	ReadOnly bool
}

// Sentinel errors of the machine contract; drivers wrap them with %w.
var (
	// ErrNotAvailable: the driver cannot run on this host (wrong OS,
	// missing hypervisor binary or framework).
	ErrNotAvailable = errors.New("hypervisor not available")
	// ErrInvalidConfig: a Config field is unusable.
	ErrInvalidConfig = errors.New("invalid machine config")
	// ErrAlreadyRunning: Start was called on a VM that is not stopped.
	ErrAlreadyRunning = errors.New("machine already running")
	// ErrNotRunning: the operation needs a running VM.
	ErrNotRunning = errors.New("machine not running")
	// ErrCrashed: the VM process ended without being asked to stop.
	ErrCrashed = errors.New("machine crashed")
)

// State is the life-cycle state of a VM as seen from the host.
type State string

// VM states. A VM moves Stopped -> Starting -> Running -> Stopping ->
// Stopped; Crashed replaces Stopped when the VM ended on its own.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateCrashed  State = "crashed"
)

// DriverName names a hypervisor driver package.
type DriverName string

// The drivers Berth has or will have.
const (
	DriverQEMU   DriverName = "qemu"   // app/machine/qemu (Linux)
	DriverVZ     DriverName = "vz"     // app/machine/vz (macOS)
	DriverHyperV DriverName = "hyperv" // app/machine/hyperv (Windows)
)

// Hypervisor creates VMs from a Config.
type Hypervisor interface {
	// Name is the driver name, e.g. "qemu".
	Name() string
	// New validates cfg and returns a stopped VM; it does not boot it.
	New(cfg Config) (VM, error)
}

// VM is one virtual machine.
type VM interface {
	// Start boots the VM and returns once the hypervisor runs it (not once
	// the guest agent is ready: Dial the control port for that).
	Start(ctx context.Context) error
	// Stop asks the guest to power off (ACPI power button) and waits; when
	// ctx ends first the VM is stopped by force. It returns once the VM
	// process is gone.
	Stop(ctx context.Context) error
	// State reports the current state.
	State() State
	// Done is closed when the VM process has ended, whether stopped or
	// crashed; Err then tells which.
	Done() <-chan struct{}
	// Err is nil while running and after an asked-for stop; it wraps
	// ErrCrashed when the VM ended on its own.
	Err() error
	// Dial opens a connection to a guest agent port (see the Port
	// constants) over whichever channel the driver has.
	Dial(ctx context.Context, port uint32) (net.Conn, error)
}

// DiskResizer is implemented by VMs whose data disk can grow while they
// run; the guest then grows its filesystem (hostlink's GrowDisk).
type DiskResizer interface {
	ResizeDisk(ctx context.Context, sizeBytes int64) error
}

// Validate checks the fields every driver relies on.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("Name", "empty")
	} else if strings.ContainsAny(c.Name, "/\\ \t\n,=") {
		bad("Name", "%q has a separator or space", c.Name)
	}
	if c.CPUs < 1 {
		bad("CPUs", "%d is below 1", c.CPUs)
	}
	if c.MemoryMiB < 128 {
		bad("MemoryMiB", "%d is below 128", c.MemoryMiB)
	}
	if c.Kernel == "" {
		bad("Kernel", "empty")
	}
	if c.Disk.Path != "" && c.Disk.SizeBytes <= 0 {
		bad("Disk.SizeBytes", "%d is not positive", c.Disk.SizeBytes)
	}
	if c.StateDir == "" {
		bad("StateDir", "empty")
	}
	if c.Subnet != "" {
		if p, err := netip.ParsePrefix(c.Subnet); err != nil || !p.Addr().Is4() || p.Bits() > 29 {
			bad("Subnet", "%q is not an IPv4 network of at least 8 addresses", c.Subnet)
		}
	}
	switch c.Arch {
	case "", ArchAMD64, ArchARM64:
	default:
		bad("Arch", "%q is not amd64 or arm64", c.Arch)
	}
	tags := map[string]bool{}
	for i, s := range c.Shares {
		field := fmt.Sprintf("Shares[%d]", i)
		switch {
		case s.Tag == "" || strings.ContainsAny(s.Tag, ",= \t\n"):
			bad(field+".Tag", "%q is empty or has a separator", s.Tag)
		case tags[s.Tag]:
			bad(field+".Tag", "%q is used twice", s.Tag)
		}
		tags[s.Tag] = true
		if !filepath.IsAbs(s.HostPath) {
			bad(field+".HostPath", "%q is not absolute", s.HostPath)
		}
		if !strings.HasPrefix(s.GuestPath, "/") || strings.ContainsAny(s.GuestPath, ", \t\n") {
			bad(field+".GuestPath", "%q is not absolute or has a separator", s.GuestPath)
		}
	}
	for _, w := range c.Cmdline {
		if w == "" || strings.ContainsAny(w, " \t\n") {
			bad("Cmdline", "word %q is empty or has a space", w)
		}
	}
	return errors.Join(errs...)
}
