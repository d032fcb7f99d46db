package runtime

import (
	"os"
	goruntime "runtime"

	"github.com/berthdesktop/berth/guestagent/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultMaskedPaths are the paths Docker hides from a container.
var DefaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
	"/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are the paths Docker makes read-only in a container.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

func i64(v int64) *int64 { return &v }

// fileMode is a pointer helper for device modes.
func fileMode(m os.FileMode) *os.FileMode { return &m }

// defaultDevices are created in every container's /dev (as runc does),
// whatever the spec lists.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fileMode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fileMode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fileMode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fileMode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fileMode(0o666)},
}

// defaultDeviceRules is Docker's device allowlist: nothing but mknod of
// any device, the default devices, the console and ptys, and tun/tap.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: access}
		if major >= 0 {
			r.Major = i64(major)
		}
		if minor >= 0 {
			r.Minor = i64(minor)
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		c(-1, -1, "m"),
		{Allow: true, Type: "b", Access: "m"},
		c(1, 3, "rwm"), c(1, 8, "rwm"), c(1, 7, "rwm"), c(5, 0, "rwm"),
		c(1, 5, "rwm"), c(1, 9, "rwm"), c(5, 1, "rwm"), c(136, -1, "rwm"),
		c(5, 2, "rwm"), c(10, 200, "rwm"),
	}
}

// DefaultSpec returns a spec with Docker's defaults: the six namespaces (no
// user namespace), the default mounts, masked and read-only paths, the 14
// default capabilities, default devices and device rules, and the default
// seccomp profile for those capabilities. The engine fills in the process,
// hostname, root and resources.
func DefaultSpec() *specs.Spec {
	caps := append([]string(nil), DefaultCapabilities...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Cwd: "/",
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
			Resources:     &specs.LinuxResources{Devices: defaultDeviceRules()},
			Seccomp:       seccomp.Default(caps, goruntime.GOARCH),
		},
	}
}

// SetCapabilities gives the process of s the capability set caps (bounding,
// effective and permitted; no inheritable or ambient, as dockerd) and
// rebuilds the default seccomp profile for it unless s runs unconfined.
func SetCapabilities(s *specs.Spec, caps []string) {
	if s.Process.Capabilities == nil {
		s.Process.Capabilities = &specs.LinuxCapabilities{}
	}
	c := s.Process.Capabilities
	c.Bounding = append([]string(nil), caps...)
	c.Effective = append([]string(nil), caps...)
	c.Permitted = append([]string(nil), caps...)
	c.Inheritable, c.Ambient = nil, nil
	if s.Linux != nil && s.Linux.Seccomp != nil {
		s.Linux.Seccomp = seccomp.Default(caps, goruntime.GOARCH)
	}
}

// ApplyCapAddDrop applies --cap-add and --cap-drop to the default set of s
// (see TweakCapabilities) and rebuilds the default seccomp profile.
func ApplyCapAddDrop(s *specs.Spec, add, drop []string) error {
	caps, err := TweakCapabilities(DefaultCapabilities, add, drop)
	if err != nil {
		return err
	}
	SetCapabilities(s, caps)
	return nil
}
