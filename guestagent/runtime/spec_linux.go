package runtime

import specs "github.com/opencontainers/runtime-spec/specs-go"

// SetPrivileged makes s a --privileged container: every capability, no
// seccomp, no masked or read-only paths, /sys and /sys/fs/cgroup writable,
// and every device of the host's /dev.
func SetPrivileged(s *specs.Spec) {
	SetCapabilities(s, AllCapabilities())
	s.Linux.Seccomp = nil
	s.Linux.MaskedPaths = nil
	s.Linux.ReadonlyPaths = nil
	for i := range s.Mounts {
		if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
			var opts []string
			for _, o := range s.Mounts[i].Options {
				if o != "ro" {
					opts = append(opts, o)
				}
			}
			s.Mounts[i].Options = append(opts, "rw")
		}
	}
	s.Linux.Devices = append(s.Linux.Devices, hostDevices()...)
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}
