//go:build linux

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berthdesktop/berth/guestagent/runtime"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultShmSize = 64 * 1024 * 1024
)

// allCaps is every capability the kernel knows today (--privileged,
// --cap-add ALL).
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// capBits maps capability names to their numbers (the order of allCaps).
func capBit(name string) int {
	for i, c := range allCaps {
		if c == name {
			return i
		}
	}
	return -1
}

// boundingCaps is the engine's own bounding set: a container cannot get a
// capability the engine lacks (dockerd grants --privileged containers
// every capability it has, not every one the kernel knows).
var boundingCaps = sync.OnceValue(func() []string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return allCaps
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		if err != nil {
			return allCaps
		}
		return capsInMask(mask)
	}
	return allCaps
})

// capsInMask lists the capabilities whose bits are set in mask.
func capsInMask(mask uint64) []string {
	var out []string
	for i, c := range allCaps {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// normalizeCap turns "net_admin" into "CAP_NET_ADMIN" and checks it.
func normalizeCap(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	for _, k := range allCaps {
		if k == u {
			return u, nil
		}
	}
	return "", invalid("unknown capability: %q", u)
}

// tweakCaps applies --cap-add/--cap-drop to base as dockerd does: drop
// first, then add; ALL in either list means every capability.
func tweakCaps(base, add, drop []string) ([]string, error) {
	var adds, drops []string
	for _, c := range add {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, err
		}
		adds = append(adds, n)
	}
	for _, c := range drop {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, err
		}
		drops = append(drops, n)
	}
	has := func(list []string, c string) bool {
		for _, x := range list {
			if x == c {
				return true
			}
		}
		return false
	}
	var out []string
	if has(adds, "ALL") {
		out = append(out, boundingCaps()...)
	} else if !has(drops, "ALL") {
		out = append(out, base...)
	}
	var res []string
	for _, c := range out {
		if has(drops, c) && !has(adds, c) {
			continue
		}
		res = append(res, c)
	}
	for _, c := range adds {
		if c != "ALL" && !has(res, c) {
			res = append(res, c)
		}
	}
	return res, nil
}

// replaceOrAppendEnv overrides base's KEY=... entries with those of over,
// keeping order (dockerd's rule for the image's and the user's Env).
func replaceOrAppendEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range over {
		k, _, hasEq := strings.Cut(kv, "=")
		if !hasEq {
			// "KEY" alone: dockerd drops it when unset in the environment.
			if i, ok := index[k]; ok {
				out[i] = ""
			}
			continue
		}
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	res := out[:0]
	for _, kv := range out {
		if kv != "" {
			res = append(res, kv)
		}
	}
	return res
}

// buildSpec turns a container's merged config into the OCI spec the
// runtime runs, starting from the Docker-default spec.
func (e *Engine) buildSpec(m *meta) (*specs.Spec, runtime.CreateOptions, error) {
	cfg, hc := m.Config, m.HostConfig
	s := e.cfg.DefaultSpec()
	var opts runtime.CreateOptions
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Root == nil {
		s.Root = &specs.Root{Path: "rootfs"}
	}

	p := s.Process
	p.Args = append([]string{m.Path}, m.Args...)
	p.Terminal = cfg.Tty
	env := []string{defaultPathEnv, "HOSTNAME=" + cfg.Hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	env = append(env, e.linkEnv(m)...)
	p.Env = replaceOrAppendEnv(env, cfg.Env)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	p.User = userSpec(cfg.User)
	for _, g := range hc.GroupAdd {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
	}
	if hc.OomScoreAdj != 0 {
		v := hc.OomScoreAdj
		p.OOMScoreAdj = &v
	}
	s.Hostname = cfg.Hostname
	s.Domainname = cfg.Domainname
	s.Root.Readonly = hc.ReadonlyRootfs

	// Capabilities.
	if p.Capabilities == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
	}
	var caps []string
	if hc.Privileged {
		caps = append([]string(nil), boundingCaps()...)
	} else {
		var err error
		caps, err = tweakCaps(p.Capabilities.Bounding, hc.CapAdd, hc.CapDrop)
		if err != nil {
			return nil, opts, err
		}
	}
	p.Capabilities.Bounding = caps
	p.Capabilities.Effective = caps
	p.Capabilities.Permitted = caps
	p.Capabilities.Inheritable = nil
	p.Capabilities.Ambient = nil

	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = append([]string(nil), hc.MaskedPaths...)
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = append([]string(nil), hc.ReadonlyPaths...)
	}

	// Security options.
	for _, o := range hc.SecurityOpt {
		k, v, _ := strings.Cut(o, "=")
		if k == o {
			k, v, _ = strings.Cut(o, ":")
		}
		switch k {
		case "no-new-privileges":
			b := true
			if v != "" {
				var err error
				b, err = strconv.ParseBool(v)
				if err != nil {
					return nil, opts, invalid("invalid --security-opt 2: %q", o)
				}
			}
			p.NoNewPrivileges = b
		case "seccomp":
			if v == "unconfined" {
				s.Linux.Seccomp = nil
			} else {
				return nil, opts, errNotImplemented{fmt.Errorf("custom seccomp profiles are not supported yet: %q", o)}
			}
		case "apparmor", "label", "systempaths":
			if k == "systempaths" && v == "unconfined" {
				s.Linux.MaskedPaths = nil
				s.Linux.ReadonlyPaths = nil
			}
		default:
			return nil, opts, invalid("invalid --security-opt 1: %q", o)
		}
	}
	if hc.Privileged {
		// The host's devices, an allow-all device rule, no seccomp, no
		// masked paths, writable /sys; the capabilities stay the engine's
		// own bounding set (a container cannot get one the engine lacks).
		runtime.SetPrivileged(s)
		p.Capabilities.Bounding = caps
		p.Capabilities.Effective = caps
		p.Capabilities.Permitted = caps
		p.Capabilities.Inheritable = nil
		p.Capabilities.Ambient = nil
	}

	// Rlimits: daemon defaults, then the container's.
	rl := map[string]specs.POSIXRlimit{}
	var order []string
	for _, u := range append(append([]*container.Ulimit(nil), e.cfg.DefaultUlimits...), hc.Ulimits...) {
		if u == nil {
			continue
		}
		typ := "RLIMIT_" + strings.ToUpper(u.Name)
		if _, ok := rl[typ]; !ok {
			order = append(order, typ)
		}
		rl[typ] = specs.POSIXRlimit{Type: typ, Hard: uint64(u.Hard), Soft: uint64(u.Soft)}
	}
	if len(order) > 0 {
		kept := p.Rlimits[:0]
		for _, r := range p.Rlimits {
			if _, ok := rl[r.Type]; !ok {
				kept = append(kept, r)
			}
		}
		p.Rlimits = kept
		for _, t := range order {
			p.Rlimits = append(p.Rlimits, rl[t])
		}
	}

	// Namespaces.
	nsOff := map[specs.LinuxNamespaceType]bool{}
	if container.NetworkMode(hc.NetworkMode) == "host" {
		nsOff[specs.NetworkNamespace] = true
	}
	if hc.PidMode.IsHost() {
		nsOff[specs.PIDNamespace] = true
	}
	if hc.IpcMode.IsHost() {
		nsOff[specs.IPCNamespace] = true
	}
	if hc.UTSMode.IsHost() {
		nsOff[specs.UTSNamespace] = true
		s.Hostname = ""
	}
	if hc.CgroupnsMode.IsHost() {
		nsOff[specs.CgroupNamespace] = true
	}
	if mode := modeOf(m); mode.kind == "container" {
		// Join the other container's network namespace; start checks
		// that it runs.
		if pid, ok := e.sandboxes.pid(mode.name); ok {
			for i, ns := range s.Linux.Namespaces {
				if ns.Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", pid)
				}
			}
		}
	}
	if len(nsOff) > 0 {
		kept := s.Linux.Namespaces[:0]
		for _, ns := range s.Linux.Namespaces {
			if !nsOff[ns.Type] {
				kept = append(kept, ns)
			}
		}
		s.Linux.Namespaces = kept
	}
	if len(hc.Sysctls) > 0 {
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range hc.Sysctls {
			s.Linux.Sysctl[k] = v
		}
	}

	// Mounts: /dev/shm size, the per-container files, binds, tmpfs.
	shm := hc.ShmSize
	if shm == 0 {
		shm = e.cfg.DefaultShmSize
	}
	if shm == 0 {
		shm = defaultShmSize
	}
	for i := range s.Mounts {
		if s.Mounts[i].Destination == "/dev/shm" {
			s.Mounts[i].Options = append(withoutOptPrefix(s.Mounts[i].Options, "size="), "size="+strconv.FormatInt(shm, 10))
		}
	}
	userDst := map[string]bool{}
	var extra []specs.Mount
	if err := e.userMounts(m, &extra, userDst); err != nil {
		return nil, opts, err
	}
	tmpfs := map[string]string{}
	for dst, o := range hc.Tmpfs {
		tmpfs[dst] = o
	}
	for _, mm := range hc.Mounts {
		if mm.Type == mount.TypeTmpfs {
			var o []string
			if mm.TmpfsOptions != nil {
				if mm.TmpfsOptions.SizeBytes > 0 {
					o = append(o, "size="+strconv.FormatInt(mm.TmpfsOptions.SizeBytes, 10))
				}
				if mm.TmpfsOptions.Mode != 0 {
					o = append(o, "mode="+strconv.FormatUint(uint64(tmpfsMode(mm.TmpfsOptions.Mode)), 8))
				}
			}
			if mm.ReadOnly {
				o = append(o, "ro")
			}
			tmpfs[mm.Target] = strings.Join(o, ",")
		}
	}
	for dst, o := range tmpfs {
		if !filepath.IsAbs(dst) {
			return nil, opts, invalid("invalid tmpfs mount path %q: must be absolute", dst)
		}
		mo := []string{"noexec", "nosuid", "nodev"}
		for _, x := range strings.Split(o, ",") {
			switch x {
			case "":
			case "exec":
				mo = withoutOpt(mo, "noexec")
			case "suid":
				mo = withoutOpt(mo, "nosuid")
			case "dev":
				mo = withoutOpt(mo, "nodev")
			default:
				mo = append(mo, x)
			}
		}
		extra = append(extra, specs.Mount{Destination: filepath.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: mo})
		userDst[filepath.Clean(dst)] = true
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", m.ResolvConfPath},
		{"/etc/hostname", m.HostnamePath},
		{"/etc/hosts", m.HostsPath},
	} {
		if f.src == "" || userDst[f.dst] {
			continue
		}
		o := []string{"rbind", "rprivate"}
		if hc.ReadonlyRootfs {
			o = append(o, "ro")
		}
		extra = append(extra, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: o})
	}
	// A user mount over a default one replaces it.
	kept := s.Mounts[:0]
	for _, mt := range s.Mounts {
		if !userDst[mt.Destination] {
			kept = append(kept, mt)
		}
	}
	s.Mounts = append(kept, extra...)

	// Resources the cgroup manager can enforce here.
	// The default spec's device rules (or --privileged's allow-all) stay:
	// without them no device filter is attached and CAP_MKNOD reaches
	// the host's disks.
	res := e.resources(&hc.Resources)
	if s.Linux.Resources != nil {
		res.Devices = s.Linux.Resources.Devices
	}
	s.Linux.Resources = res

	opts.Init = e.cfg.Init
	if hc.Init != nil {
		opts.Init = *hc.Init
	}
	opts.IO = runtime.IOOptions{Terminal: cfg.Tty, OpenStdin: cfg.OpenStdin, ConsoleSize: hc.ConsoleSize}
	return s, opts, nil
}

// userSpec maps Config.User ("name", "uid", "uid:gid", "name:group") to the
// spec's user; the runtime resolves names against the rootfs's files.
func userSpec(u string) specs.User {
	var out specs.User
	if u == "" {
		return out
	}
	out.Username = u
	usr, grp, hasGrp := strings.Cut(u, ":")
	if n, err := strconv.ParseUint(usr, 10, 32); err == nil {
		out.UID = uint32(n)
		out.GID = uint32(n)
		if !hasGrp {
			out.GID = 0
		}
	}
	if hasGrp {
		if n, err := strconv.ParseUint(grp, 10, 32); err == nil {
			out.GID = uint32(n)
		}
	}
	return out
}

// resources turns the API's limits into the spec's, leaving out what the
// cgroup manager cannot enforce here.
func (e *Engine) resources(r *container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	lim := e.cfg.Limits
	if r.Memory > 0 && lim.Memory {
		v := r.Memory
		out.Memory = &specs.LinuxMemory{Limit: &v}
		if r.MemorySwap != 0 && lim.Swap {
			sw := r.MemorySwap
			out.Memory.Swap = &sw
		}
	}
	if lim.CPUQuota && (r.NanoCPUs > 0 || r.CPUQuota > 0) {
		period := uint64(100000)
		quota := r.CPUQuota
		if r.CPUPeriod > 0 {
			period = uint64(r.CPUPeriod)
		}
		if r.NanoCPUs > 0 {
			quota = r.NanoCPUs * int64(period) / 1e9
		}
		out.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if r.CPUShares > 0 && lim.CPUShares {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		v := uint64(r.CPUShares)
		out.CPU.Shares = &v
	}
	if (r.CpusetCpus != "" || r.CpusetMems != "") && lim.CPUSet {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		out.CPU.Cpus = r.CpusetCpus
		out.CPU.Mems = r.CpusetMems
	}
	if r.PidsLimit != nil && *r.PidsLimit != 0 && lim.Pids {
		v := *r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &v}
	}
	return out
}

// resourceWarnings are dockerd's warnings for limits this host cannot
// enforce (the limit is then discarded).
func (e *Engine) resourceWarnings(r *container.Resources) []string {
	var w []string
	lim := e.cfg.Limits
	if r.Memory > 0 && !lim.Memory {
		w = append(w, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	if r.Memory > 0 && lim.Memory && r.MemorySwap > 0 && !lim.Swap {
		w = append(w, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
	}
	if (r.NanoCPUs > 0 || r.CPUQuota > 0 || r.CPUPeriod > 0) && !lim.CPUQuota {
		w = append(w, "Your kernel does not support CPU CFS scheduler or the cgroup is not mounted. CPU limit discarded.")
	}
	if r.CPUShares > 0 && !lim.CPUShares {
		w = append(w, "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
	}
	if (r.CpusetCpus != "" || r.CpusetMems != "") && !lim.CPUSet {
		w = append(w, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 && !lim.Pids {
		w = append(w, "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
	}
	return w
}

func withoutOpt(opts []string, o string) []string {
	var out []string
	for _, x := range opts {
		if x != o {
			out = append(out, x)
		}
	}
	return out
}

func withoutOptPrefix(opts []string, prefix string) []string {
	var out []string
	for _, x := range opts {
		if !strings.HasPrefix(x, prefix) {
			out = append(out, x)
		}
	}
	return out
}
