package qemu

import (
	"hash/fnv"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/app/machine"
)

// probeHost finds what this host offers the VM: KVM when /dev/kvm opens
// read-write and the guest has the host's architecture, vhost-vsock when
// /dev/vhost-vsock opens read-write, O_DIRECT on the disk's filesystem.
func probeHost(cfg machine.Config) hostEnv {
	var env hostEnv
	arch := cfg.Arch
	if arch == "" {
		arch = machine.Arch(runtime.GOARCH)
	}
	if arch == machine.Arch(runtime.GOARCH) && opensReadWrite("/dev/kvm") && kvmWorks() {
		env.KVM = true
	}
	if opensReadWrite("/dev/vhost-vsock") {
		env.VsockCID = guestCID(cfg.StateDir)
	}
	if cfg.Disk.Path != "" {
		env.DirectIO = directIOWorks(cfg.Disk.Path)
	}
	return env
}

func opensReadWrite(path string) bool {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// guestCID derives a stable guest context ID from the state folder, so that
// two VMs of one host (two Berth homes) do not collide. CIDs 0-2 are
// reserved.
func guestCID(stateDir string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(stateDir))
	return 3 + h.Sum32()%(1<<24)
}

// directIOWorks tells whether the filesystem holding path accepts O_DIRECT
// (tmpfs does not), which QEMU's cache=none needs.
func directIOWorks(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
