//go:build linux

package engine

import (
	"bufio"
	"context"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"net/netip"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// SystemInfo implements api.SystemBackend.
func (e *Engine) SystemInfo(ctx context.Context) (*system.Info, error) {
	info := &system.Info{
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(e.cfg.Root)}, {"Supports d_type", "true"}, {"Using metacopy", "false"}, {"Native Overlay Diff", "true"}, {"userxattr", "false"}},
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "null"}, Log: []string{"json-file"}},
		MemoryLimit:        e.cfg.Limits.Memory,
		SwapLimit:          e.cfg.Limits.Swap,
		CPUCfsPeriod:       e.cfg.Limits.CPUQuota,
		CPUCfsQuota:        e.cfg.Limits.CPUQuota,
		CPUShares:          e.cfg.Limits.CPUShares,
		CPUSet:             e.cfg.Limits.CPUSet,
		PidsLimit:          e.cfg.Limits.Pids,
		IPv4Forwarding:     ipv4Forwarding(),
		Debug:              e.cfg.Debug,
		NFd:                countFDs(),
		NGoroutines:        goruntime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      "2",
		NEventsListener:    e.events.listeners(),
		KernelVersion:      kernelVersion(),
		OperatingSystem:    operatingSystem(),
		OSVersion:          osVersion(),
		OSType:             "linux",
		Architecture:       machineArch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     registryInfo(e.cfg.InsecureRegistries, e.cfg.RegistryMirrors),
		NCPU:               goruntime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      e.cfg.Root,
		HTTPProxy:          os.Getenv("HTTP_PROXY"),
		HTTPSProxy:         os.Getenv("HTTPS_PROXY"),
		NoProxy:            os.Getenv("NO_PROXY"),
		Labels:             append([]string{}, e.cfg.Labels...),
		ServerVersion:      e.cfg.ServerVersion,
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {}},
		DefaultRuntime:     "berth",
		InitBinary:         "docker-init",
		SecurityOptions:    []string{"name=seccomp,profile=builtin", "name=cgroupns"},
		CDISpecDirs:        []string{},
		Warnings:           []string{},
	}
	info.Name, _ = os.Hostname()
	info.ID = e.engineID()
	if e.cfg.CountImages != nil {
		info.Images = e.cfg.CountImages()
	}
	for _, c := range e.containers() {
		c.mu.Lock()
		st := c.m.State
		c.mu.Unlock()
		info.Containers++
		switch {
		case st.Paused:
			info.ContainersPaused++
		case st.Running:
			info.ContainersRunning++
		default:
			info.ContainersStopped++
		}
	}
	info.Warnings = limitWarnings(e.cfg.Limits)
	if !info.IPv4Forwarding {
		info.Warnings = append(info.Warnings, "WARNING: IPv4 forwarding is disabled")
	}
	return info, nil
}

// limitWarnings are docker info's warnings for limits the host cannot
// enforce, worded as dockerd words them.
func limitWarnings(l Limits) []string {
	w := []string{}
	if !l.Memory {
		w = append(w, "WARNING: No memory limit support")
	}
	if !l.Swap {
		w = append(w, "WARNING: No swap limit support")
	}
	if !l.CPUQuota {
		w = append(w, "WARNING: No cpu cfs quota support", "WARNING: No cpu cfs period support")
	}
	if !l.CPUShares {
		w = append(w, "WARNING: No cpu shares support")
	}
	if !l.CPUSet {
		w = append(w, "WARNING: No cpuset support")
	}
	if !l.Pids {
		w = append(w, "WARNING: No pids limit support")
	}
	return w
}

// engineID is a stable identifier of this engine's data root.
func (e *Engine) engineID() string {
	p := e.cfg.Root + "/engine-id"
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	id := newID()
	id = id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
	_ = atomicfile.Write(p, []byte(id+"\n"), 0o600)
	return id
}

// SystemVersion implements api.SystemBackend.
func (e *Engine) SystemVersion(ctx context.Context) (system.VersionResponse, error) {
	kv := kernelVersion()
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth Engine"},
		Version:       e.cfg.ServerVersion,
		APIVersion:    api.APIVersion,
		MinAPIVersion: api.MinAPIVersion,
		Os:            "linux",
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		KernelVersion: kv,
		GitCommit:     "berth",
		BuildTime:     "",
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: e.cfg.ServerVersion,
			Details: map[string]string{
				"ApiVersion":    api.APIVersion,
				"MinAPIVersion": api.MinAPIVersion,
				"Os":            "linux",
				"Arch":          goruntime.GOARCH,
				"GoVersion":     goruntime.Version(),
				"KernelVersion": kv,
				"GitCommit":     "berth",
				"Experimental":  "false",
			},
		}},
	}, nil
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func machineArch() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return goruntime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func osRelease() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			out[k] = v
		}
	}
	return out
}

func operatingSystem() string {
	if n := osRelease()["PRETTY_NAME"]; n != "" {
		return n
	}
	return "Linux"
}

func osVersion() string { return osRelease()["VERSION_ID"] }

func memTotal() int64 {
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}

func ipv4Forwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func backingFS(path string) string {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown"
}

// registryInfo is /info's RegistryConfig, shaped as dockerd's: Docker Hub's
// index with the mirrors, one insecure index per registry name, and the
// CIDRs (127.0.0.0/8 always among them).
func registryInfo(insecure, mirrors []string) *registry.ServiceConfig {
	sc := &registry.ServiceConfig{
		IndexConfigs: map[string]*registry.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: append([]string{}, mirrors...), Secure: true, Official: true},
		},
		Mirrors: append([]string{}, mirrors...),
	}
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	seen := map[netip.Prefix]bool{}
	for _, r := range insecure {
		if p, err := netip.ParsePrefix(r); err == nil {
			p = p.Masked()
			if !seen[p] {
				seen[p] = true
				sc.InsecureRegistryCIDRs = append(sc.InsecureRegistryCIDRs, p)
			}
			continue
		}
		sc.IndexConfigs[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}, Secure: false, Official: false}
	}
	if !seen[loopback] {
		sc.InsecureRegistryCIDRs = append([]netip.Prefix{loopback}, sc.InsecureRegistryCIDRs...)
	}
	return sc
}
