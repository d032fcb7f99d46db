package vz

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

// Virtiofs tags of the VM's directory-sharing devices.
const (
	// shareTag is the one device carrying every shared folder: a
	// multiple-directory share whose directories are named by the
	// shares' tags (shareName).
	shareTag = "berth"
	// rosettaTag is the device sharing the Rosetta runtime.
	rosettaTag = "rosetta"
)

// minMacOS is the oldest macOS the driver runs on (the bundle's
// LSMinimumSystemVersion): multiple-directory shares and the disk's caching
// modes need 12, Rosetta for Linux needs 13.
var minMacOS = macOSVersion{13, 0}

// rosettaAvailability mirrors the framework's VZLinuxRosettaAvailability.
type rosettaAvailability int

const (
	rosettaNotSupported rosettaAvailability = iota // Intel Mac, or macOS before 13
	rosettaNotInstalled
	rosettaInstalled
)

// macOSVersion is a macOS major.minor version.
type macOSVersion struct{ Major, Minor int }

func (v macOSVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

func (v macOSVersion) atLeast(w macOSVersion) bool {
	return v.Major > w.Major || (v.Major == w.Major && v.Minor >= w.Minor)
}

// parseMacOSVersion reads a product version as sysctl
// kern.osproductversion gives it ("14.5", "13.6.7", "15").
func parseMacOSVersion(s string) (macOSVersion, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	var v macOSVersion
	var err error
	if v.Major, err = strconv.Atoi(parts[0]); err != nil || v.Major <= 0 {
		return macOSVersion{}, fmt.Errorf("macOS version %q does not parse", s)
	}
	if len(parts) > 1 {
		if v.Minor, err = strconv.Atoi(parts[1]); err != nil || v.Minor < 0 {
			return macOSVersion{}, fmt.Errorf("macOS version %q does not parse", s)
		}
	}
	return v, nil
}

// hostInfo is what the driver knows of the Mac before building a VM:
// probeHost fills it from the framework, tests by hand.
type hostInfo struct {
	Arch    machine.Arch
	MacOS   macOSVersion
	Rosetta rosettaAvailability
	// Translated: this program is an amd64 build running under Rosetta on
	// Apple silicon, where the framework does not run.
	Translated bool
	// The framework's limits; zero when unknown.
	MinCPUs, MaxCPUs     uint
	MinMemory, MaxMemory uint64
}

// checkHost refuses a Mac the driver cannot run on.
func checkHost(h hostInfo) error {
	if !h.MacOS.atLeast(minMacOS) {
		return fmt.Errorf("%w: macOS %s is older than %s", machine.ErrNotAvailable, h.MacOS, minMacOS)
	}
	if h.Translated {
		return fmt.Errorf("%w: this amd64 build runs under Rosetta, where the Virtualization framework does not: use the arm64 build", machine.ErrNotAvailable)
	}
	return nil
}

// shareNameRE is what a share's tag must look like to name a directory of
// the multiple-directory share (and a guest mount's source).
var shareNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$`)

// checkConfig checks what the Virtualization framework needs of cfg beyond
// machine.Config.Validate.
func checkConfig(cfg machine.Config, h hostInfo, rosetta bool) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", machine.ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if cfg.Arch != "" && cfg.Arch != h.Arch {
		bad("Arch", "%s guests cannot run on this %s Mac: the Virtualization framework runs the host's architecture (Rosetta runs amd64 binaries in an arm64 VM)", cfg.Arch, h.Arch)
	}
	if cpus := uint(cfg.CPUs); h.MaxCPUs != 0 && (cpus < h.MinCPUs || cpus > h.MaxCPUs) {
		bad("CPUs", "%d is outside this Mac's %d-%d", cfg.CPUs, h.MinCPUs, h.MaxCPUs)
	}
	if mem := uint64(cfg.MemoryMiB) << 20; h.MaxMemory != 0 && (mem < h.MinMemory || mem > h.MaxMemory) {
		bad("MemoryMiB", "%d is outside this Mac's %d-%d MiB", cfg.MemoryMiB, h.MinMemory>>20, h.MaxMemory>>20)
	}
	for i, s := range cfg.Shares {
		if !shareNameRE.MatchString(s.Tag) {
			bad(fmt.Sprintf("Shares[%d].Tag", i), "%q cannot name a directory of the share (letters, digits, '.', '_', '-'; at most 36)", s.Tag)
		}
	}
	if rosetta && h.Arch == machine.ArchARM64 {
		switch h.Rosetta {
		case rosettaInstalled:
		case rosettaNotInstalled:
			errs = append(errs, fmt.Errorf("%w: Rosetta is not installed: run `softwareupdate --install-rosetta --agree-to-license`, or turn Rosetta off", machine.ErrNotAvailable))
		default:
			errs = append(errs, fmt.Errorf("%w: Rosetta for Linux needs macOS 13 on Apple silicon", machine.ErrNotAvailable))
		}
	}
	return errors.Join(errs...)
}

// plan is a machine.Config translated into what the framework's objects
// take, every decision made: the darwin backend only builds objects from it.
type plan struct {
	Kernel, Initrd string
	Cmdline        string
	CPUs           uint
	MemoryBytes    uint64
	// Disk is the raw data disk ("" for none), attached cached with fsync
	// synchronisation.
	Disk string
	// Shares are the directories of the one virtiofs device tagged
	// shareTag; none means no device.
	Shares []planShare
	// Rosetta adds the device tagged rosettaTag sharing Rosetta.
	Rosetta bool
	// ConsoleLog receives the guest's hvc0 ("" for no console device).
	ConsoleLog string
	// MAC is the network card's address, stable across boots so that the
	// NAT's DHCP server gives the VM the same address.
	MAC net.HardwareAddr
}

// planShare is one directory of the multiple-directory share.
type planShare struct {
	Name     string // directory name inside the share: the share's tag
	HostPath string
	ReadOnly bool
}

// makePlan translates a checked cfg.
func makePlan(cfg machine.Config, rosetta bool, now time.Time) plan {
	p := plan{
		Kernel:      cfg.Kernel,
		Initrd:      cfg.Initrd,
		Cmdline:     kernelCmdline(cfg, rosetta, now),
		CPUs:        uint(cfg.CPUs),
		MemoryBytes: uint64(cfg.MemoryMiB) << 20,
		Disk:        cfg.Disk.Path,
		Rosetta:     rosetta,
		ConsoleLog:  cfg.ConsoleLogPath,
		MAC:         macAddress(cfg.StateDir),
	}
	for _, s := range cfg.Shares {
		p.Shares = append(p.Shares, planShare{Name: s.Tag, HostPath: s.HostPath, ReadOnly: s.ReadOnly})
	}
	return p
}

// kernelCmdline is the guest kernel command line: the console on the
// virtio console (hvc0), panic handling, the berth.* parameters of
// docs/CHANNEL.md, then cfg.Cmdline.
//
// The shares ride on one device: berth.sharedev names its virtiofs tag and
// berth.shares maps each of its directories to the guest path to mount it
// at (berth.shares=<directory>=<path>,...). berth.rosetta names the tag of
// the Rosetta share, which the guest mounts and registers with binfmt_misc.
func kernelCmdline(cfg machine.Config, rosetta bool, now time.Time) string {
	words := []string{"console=hvc0", "quiet", "panic=-1", "berth.link=vsock",
		"berth.time=" + strconv.FormatInt(now.Unix(), 10)}
	if len(cfg.Shares) > 0 {
		shares := make([]string, len(cfg.Shares))
		for i, s := range cfg.Shares {
			shares[i] = s.Tag + "=" + s.GuestPath
		}
		words = append(words, "berth.sharedev="+shareTag, "berth.shares="+strings.Join(shares, ","))
	}
	if rosetta {
		words = append(words, "berth.rosetta="+rosettaTag)
	}
	words = append(words, cfg.Cmdline...)
	return strings.Join(words, " ")
}

// macAddress derives a locally administered unicast MAC address from the
// state folder, so one Berth home keeps its address (and its DHCP lease)
// and two homes do not collide.
func macAddress(stateDir string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte(stateDir))
	sum := h.Sum64()
	mac := make(net.HardwareAddr, 6)
	for i := range mac {
		mac[i] = byte(sum >> (8 * i))
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac
}

// checkKernel checks that the kernel at path is one the framework boots:
// on arm64 an uncompressed Image (its "ARM\x64" magic at 0x38), which
// Debian's arm64 vmlinuz is; a compressed one (gzip, or an EFI zboot
// image) does not boot. An amd64 bzImage boots as it is.
func checkKernel(path string, arch machine.Arch) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	defer f.Close()
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("kernel %s: %w", path, err)
	}
	head = head[:n]
	if arch != machine.ArchARM64 {
		return nil
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return fmt.Errorf("%w: kernel %s is gzip-compressed: the Virtualization framework boots an uncompressed arm64 Image", machine.ErrInvalidConfig, path)
	case len(head) >= 8 && bytes.HasPrefix(head, []byte("MZ")) && string(head[4:8]) == "zimg":
		return fmt.Errorf("%w: kernel %s is an EFI zboot (compressed) image: the Virtualization framework boots an uncompressed arm64 Image", machine.ErrInvalidConfig, path)
	case len(head) < 0x3c || string(head[0x38:0x3c]) != "ARM\x64":
		return fmt.Errorf("%w: kernel %s is not an arm64 Image (no ARM\\x64 magic at 0x38)", machine.ErrInvalidConfig, path)
	}
	return nil
}
