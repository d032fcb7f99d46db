package settings

import (
	"encoding/json"
	"io/fs"
	"os"
	"runtime"
)

// Host is what settings are checked against: the OS whose path rules
// apply, the machine's CPUs and memory, the user's home folder, and how to
// look a path up. Tests describe other hosts as data.
type Host struct {
	// OS is "darwin", "linux" or "windows".
	OS string
	// CPUs and MemoryMiB are the machine's; 0 is unknown and not checked.
	CPUs      int
	MemoryMiB int
	// Home is the user's home folder (the Linux default share).
	Home string
	// Stat looks a host path up; nil is os.Stat.
	Stat func(string) (fs.FileInfo, error)
}

// LocalHost describes the machine this runs on.
func LocalHost() Host {
	home, _ := os.UserHomeDir()
	return Host{OS: runtime.GOOS, CPUs: runtime.NumCPU(), MemoryMiB: hostMemoryMiB(), Home: home}
}

func (h Host) stat(p string) (fs.FileInfo, error) {
	if h.Stat != nil {
		return h.Stat(p)
	}
	return os.Stat(p)
}

// The default resources, before they are fitted to the host.
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 2048
	DefaultSwapMiB   = 1024
	DefaultDiskGiB   = 64
	// MinMemoryMiB is the least memory the VM boots with.
	MinMemoryMiB = 512
	// MinDiskGiB is the smallest data disk.
	MinDiskGiB = 4
	// MaxSwapMiB bounds the swap file.
	MaxSwapMiB = 64 << 10
)

// MemoryReserveMiB is what the host keeps for itself: 1 GiB, or half of
// a host with less than 2 GiB.
func MemoryReserveMiB(hostMiB int) int {
	if hostMiB < 2048 {
		return hostMiB / 2
	}
	return 1024
}

// MaxMemoryMiB is the most memory the VM may have on h; 0 when h's memory
// is unknown.
func MaxMemoryMiB(h Host) int {
	if h.MemoryMiB <= 0 {
		return 0
	}
	return h.MemoryMiB - MemoryReserveMiB(h.MemoryMiB)
}

// DefaultShares are the folders shared by default on each OS, as Docker
// Desktop shares them.
func DefaultShares(h Host) []string {
	switch h.OS {
	case "darwin":
		return []string{"/Users", "/Volumes", "/private", "/tmp", "/var/folders"}
	case "windows":
		return []string{`C:\Users`}
	}
	if h.Home == "" {
		return []string{}
	}
	return []string{h.Home}
}

// Defaults is the document a new user starts with on h: 2 CPUs and 2 GiB
// (fewer on a host that has less), 1 GiB of swap, a 64 GiB disk, the OS's
// default shares, the system's proxies, an empty daemon.json; updates are
// not checked for; the keychain holds registry credentials where the OS
// has one Docker's credential helpers use (macOS, Windows).
func Defaults(h Host) *Document {
	d := &Document{
		Version: Version,
		General: General{UseKeychain: h.OS == "darwin" || h.OS == "windows"},
		Resources: Resources{
			CPUs:      DefaultCPUs,
			MemoryMiB: DefaultMemoryMiB,
			SwapMiB:   DefaultSwapMiB,
			DiskGiB:   DefaultDiskGiB,
		},
		FileSharing: FileSharing{Paths: DefaultShares(h)},
		Proxies:     Proxies{Mode: ProxySystem},
		Engine:      json.RawMessage("{}"),
	}
	if h.CPUs > 0 && h.CPUs < d.Resources.CPUs {
		d.Resources.CPUs = h.CPUs
	}
	if m := MaxMemoryMiB(h); m > 0 && m < d.Resources.MemoryMiB {
		d.Resources.MemoryMiB = max(m, MinMemoryMiB)
	}
	return d
}
