package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/berthdesktop/berth/guestagent/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Init is the re-exec'd container init (cmd/berth-agent dispatches to it
// when started as the runtime's child); it never returns on success. It
// returns an error only when it could not tell its parent what went wrong.
func Init() error {
	// Every step that changes the calling thread (setns, capabilities,
	// seccomp, credentials) happens on this one thread, which then execs.
	goruntime.LockOSThread()
	// Descriptors the engine inherited without close-on-exec (from the
	// shell that started it, say) came along through the re-exec; none of
	// them may reach the user's process. The config and sync descriptors
	// stay usable until exec.
	if err := cloexecFrom(fdConfig); err != nil {
		return fmt.Errorf("runtime init: %w", err)
	}
	cfgFile := os.NewFile(fdConfig, "config")
	syncFile := os.NewFile(fdSync, "sync")
	if cfgFile == nil || syncFile == nil {
		return errors.New("runtime init: started without its config and sync descriptors")
	}
	var cfg initConfig
	err := json.NewDecoder(bufio.NewReader(cfgFile)).Decode(&cfg)
	cfgFile.Close()
	if err != nil {
		err = fmt.Errorf("read config: %w", err)
	} else {
		switch cfg.Mode {
		case modeCreate:
			err = containerInit(&cfg, syncFile)
		case modeExec:
			err = execInit(&cfg, syncFile)
		default:
			err = fmt.Errorf("unknown init mode %q", cfg.Mode)
		}
	}
	if werr := writeMsg(syncFile, syncMsg{Type: "error", Error: err.Error()}); werr != nil {
		return err
	}
	os.Exit(1)
	return nil
}

// containerInit runs as PID 1 of the new namespaces. It builds the root
// filesystem, pivots into it, prepares the process, reports ready, waits
// for the go byte and execs the user's process. It returns only on error.
func containerInit(cfg *initConfig, syncFile *os.File) error {
	spec := cfg.Spec
	if spec == nil || spec.Process == nil {
		return errors.New("spec without a process")
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	// Namespaces given by path (--network container:x and the like) are
	// joined by this thread; the others were created by clone.
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		if err := joinNamespace(ns); err != nil {
			return err
		}
	}
	// Nothing mounted from here on may propagate back to the host.
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	rootfs := cfg.RootfsDir
	if err := mountRootfs(rootfs, cfg.Rootfs, spec.Root); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	devTmpfs := false
	for _, m := range spec.Mounts {
		if err := mountSpecMount(rootfs, m); err != nil {
			if m.Type == "cgroup" || m.Type == "cgroup2" {
				// A host without a usable cgroup2 for this namespace still
				// runs containers; /sys/fs/cgroup stays empty.
				continue
			}
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
		if m.Destination == "/dev" && m.Type == "tmpfs" {
			devTmpfs = true
		}
	}
	if devTmpfs {
		devs := append(append([]specs.LinuxDevice(nil), defaultDevices...), spec.Linux.Devices...)
		if err := createDevices(rootfs, devs); err != nil {
			return err
		}
	}
	reaperBound := false
	if cfg.Init {
		dest, err := securePath(rootfs, "/sbin/"+ReaperName)
		if err != nil {
			return err
		}
		if err := makeMountpoint(dest, false); err != nil {
			return err
		}
		// The engine's detached bind mount of its running binary (made
		// in its mount namespace, where the file is), which stays that
		// binary however its path changed since the engine started (an
		// upgrade while it runs). Once the binary is removed its mount can
		// no longer be attached: the reaper is then exec'd through
		// /proc/self/exe, the same binary, and /sbin/docker-init stays an
		// empty file.
		if cfg.ReaperFD <= 0 {
			return errors.New("no agent binary to bind as the reaper")
		}
		err = unix.MoveMount(cfg.ReaperFD, "", unix.AT_FDCWD, dest, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(cfg.ReaperFD)
		switch {
		case err == nil:
			reaperBound = true
			if err := remountReadonly(dest); err != nil {
				return err
			}
		case err != unix.ENOENT:
			return fmt.Errorf("mount the agent binary on %s: %w", dest, err)
		}
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	for k, v := range spec.Linux.Sysctl {
		if err := setSysctl(k, v); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := remountReadonly("/"); err != nil {
			return err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setdomainname %q: %w", spec.Domainname, err)
		}
	}
	pr, err := prepareProcess(spec.Process, cfg.Filter, true)
	if err != nil {
		return err
	}
	if spec.Process.Terminal {
		if err := setupTerminal(pr.user.UID); err != nil {
			return err
		}
	}
	argv := spec.Process.Args
	if cfg.Init {
		pr.path = "/sbin/" + ReaperName
		if !reaperBound {
			pr.path = "/proc/self/exe"
		}
		argv = append([]string{"/sbin/" + ReaperName, "--"}, argv...)
	}
	syncFlags := unix.FD_CLOEXEC
	if cfg.Init {
		// The reaper inherits the sync socket and closes it once it
		// forwards signals, so Start returns only then: a signal sent
		// earlier would find the reaper with default dispositions, which
		// as PID 1 drops it (or, in the Go runtime before signal.Notify,
		// exits with 2).
		syncFlags = 0
		pr.env = append(pr.env, reaperSyncEnv+"="+strconv.Itoa(fdSync))
	}
	if _, err := unix.FcntlInt(fdSync, unix.F_SETFD, syncFlags); err != nil {
		return fmt.Errorf("set close-on-exec on sync: %w", err)
	}
	if err := applyCreds(pr); err != nil {
		return err
	}
	if err := writeMsg(syncFile, syncMsg{Type: "ready"}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	var b [1]byte
	for {
		n, err := unix.Read(fdSync, b[:])
		if err == unix.EINTR {
			continue
		}
		if n != 1 || err != nil {
			// The engine deleted the container before starting it.
			os.Exit(0)
		}
		break
	}
	err = syscall.Exec(pr.path, argv, pr.env)
	return fmt.Errorf("exec %s: %w", pr.path, err)
}

// cloexecFrom marks every descriptor >= first close-on-exec: with one
// close_range call where the kernel has it (5.11), else one by one from
// /proc/self/fd.
func cloexecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	return cloexecListed(first)
}

// cloexecListed is cloexecFrom for kernels without CLOSE_RANGE_CLOEXEC.
func cloexecListed(first int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	names, err := d.Readdirnames(-1)
	dirfd := int(d.Fd())
	if err != nil {
		d.Close()
		return fmt.Errorf("list open descriptors: %w", err)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < first || fd == dirfd {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			d.Close()
			return fmt.Errorf("set close-on-exec on descriptor %d: %w", fd, err)
		}
	}
	return d.Close()
}

// joinNamespace joins the namespace at ns.Path with the calling thread.
func joinNamespace(ns specs.LinuxNamespace) error {
	flags := map[specs.LinuxNamespaceType]int{
		specs.NetworkNamespace: unix.CLONE_NEWNET, specs.IPCNamespace: unix.CLONE_NEWIPC,
		specs.UTSNamespace: unix.CLONE_NEWUTS, specs.CgroupNamespace: unix.CLONE_NEWCGROUP,
	}
	f, ok := flags[ns.Type]
	if !ok {
		return fmt.Errorf("joining a %s namespace by path is not supported", ns.Type)
	}
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, f); err != nil {
		return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
	}
	return nil
}

// prepared is a process ready to be exec'd: resolved path, environment and
// the credentials to switch to.
type prepared struct {
	path    string
	env     []string
	user    execUser
	caps    *specs.LinuxCapabilities
	nnp     bool
	filter  []bpf.RawInstruction
	process *specs.Process
}

// prepareProcess resolves user, cwd, command and limits of p against the
// current root (the container's) and decodes its seccomp filter. A missing
// cwd is created for a container's process (as runc does) but is an error
// for an exec.
func prepareProcess(p *specs.Process, filter []byte, createCwd bool) (*prepared, error) {
	if len(p.Args) == 0 {
		return nil, errors.New("no command specified")
	}
	pw, _ := readPasswd("/etc/passwd")
	gr, _ := readGroup("/etc/group")
	var extra []int
	for _, g := range p.User.AdditionalGids {
		extra = append(extra, int(g))
	}
	u, err := resolveUser(p.User.Username, int(p.User.UID), int(p.User.GID), pw, gr, extra)
	if err != nil {
		return nil, err
	}
	env := append([]string(nil), p.Env...)
	if _, ok := envValue(env, "HOME"); !ok {
		env = append(env, "HOME="+u.Home)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if createCwd {
		if err := os.MkdirAll(cwd, 0o755); err != nil {
			return nil, fmt.Errorf("create cwd %q: %w", cwd, err)
		}
	}
	if err := unix.Chdir(cwd); err != nil {
		return nil, fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return nil, err
	}
	for _, rl := range p.Rlimits {
		res, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return nil, fmt.Errorf("set %s to %d:%d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return nil, fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	pr := &prepared{path: path, env: env, user: u, caps: p.Capabilities, nnp: p.NoNewPrivileges, process: p}
	if len(filter) > 0 {
		if pr.filter, err = decodeFilter(filter); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

func readPasswd(path string) ([]passwdEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parsePasswd(f)
}

func readGroup(path string) ([]groupEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseGroup(f)
}

// lastCap is the highest capability number the kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(capNames) - 1
}

// applyCreds switches the calling thread to the prepared identity, in
// runc's order: seccomp first when no_new_privs is off (loading a filter
// then needs CAP_SYS_ADMIN), the bounding set, user and groups with the
// permitted set kept, the final capability sets and ambient ones,
// no_new_privs, and seccomp last when no_new_privs is on (so that the
// filter need not allow the set-up calls).
func applyCreds(pr *prepared) error {
	if pr.filter != nil && !pr.nnp {
		if err := seccomp.Load(pr.filter); err != nil {
			return err
		}
	}
	var eff, perm, inh, amb uint64
	if c := pr.caps; c != nil {
		bound, err := capMask(c.Bounding)
		if err != nil {
			return err
		}
		for i := 0; i <= lastCap(); i++ {
			if bound&(1<<uint(i)) == 0 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
					return fmt.Errorf("drop capability %d from the bounding set: %w", i, err)
				}
			}
		}
		if eff, err = capMask(c.Effective); err != nil {
			return err
		}
		if perm, err = capMask(c.Permitted); err != nil {
			return err
		}
		if inh, err = capMask(c.Inheritable); err != nil {
			return err
		}
		if amb, err = capMask(c.Ambient); err != nil {
			return err
		}
	}
	// Capabilities this process does not hold (a host whose bounding set
	// lacks some, with --privileged asking for all) are left out, as runc
	// leaves out unavailable ones.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	have := uint64(cur[0].Permitted) | uint64(cur[1].Permitted)<<32
	eff, perm, inh, amb = eff&have, perm&have, inh&have, amb&have
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	u := pr.user
	gids := make([]uint32, len(u.Sgids))
	for i, g := range u.Sgids {
		gids[i] = uint32(g)
	}
	var gp unsafe.Pointer
	if len(gids) > 0 {
		gp = unsafe.Pointer(&gids[0])
	}
	// Raw calls change only this thread, the one that execs; the other
	// threads of the Go runtime die with exec.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(gp), 0); e != 0 {
		return fmt.Errorf("setgroups %v: %w", u.Sgids, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	if pr.caps != nil {
		data := [2]unix.CapUserData{
			{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
			{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
		for i := 0; i < 64; i++ {
			if amb&(1<<uint(i)) != 0 {
				if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
					return fmt.Errorf("raise ambient capability %s: %w", capNames[i], err)
				}
			}
		}
	}
	if pr.nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
		if pr.filter != nil {
			if err := seccomp.Load(pr.filter); err != nil {
				return err
			}
		}
	}
	return nil
}

// setupTerminal opens the container's pty, makes its slave /dev/console,
// stdin, stdout, stderr and controlling terminal of this process (a session
// leader since clone), and sends the master to the engine.
func setupTerminal(uid int) error {
	master, slave, name, err := openContainerPty(uid)
	if err != nil {
		return err
	}
	if err := makeMountpoint("/dev/console", false); err != nil {
		return err
	}
	if err := mount(name, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if err := sendConsole(master); err != nil {
		return err
	}
	unix.Close(master)
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup pty onto %d: %w", fd, err)
		}
	}
	unix.Close(slave)
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}
