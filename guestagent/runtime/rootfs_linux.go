package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountError says which mount(2) failed and how, as runc's mountError.
type mountError struct {
	op     string
	source string
	target string
	fstype string
	flags  uintptr
	data   string
	err    error
}

func (e *mountError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.op, e.target)
	if e.source != "" {
		fmt.Fprintf(&b, " (source %s", e.source)
		if e.fstype != "" {
			fmt.Fprintf(&b, ", type %s", e.fstype)
		}
		b.WriteString(")")
	}
	if e.flags != 0 {
		fmt.Fprintf(&b, " flags %s", flagString(e.flags))
	}
	if e.data != "" {
		fmt.Fprintf(&b, " data %q", e.data)
	}
	fmt.Fprintf(&b, ": %v", e.err)
	return b.String()
}

func (e *mountError) Unwrap() error { return e.err }

var flagNames = []struct {
	f uintptr
	n string
}{
	{unix.MS_RDONLY, "MS_RDONLY"}, {unix.MS_NOSUID, "MS_NOSUID"}, {unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"}, {unix.MS_REMOUNT, "MS_REMOUNT"}, {unix.MS_BIND, "MS_BIND"},
	{unix.MS_REC, "MS_REC"}, {unix.MS_PRIVATE, "MS_PRIVATE"}, {unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"}, {unix.MS_UNBINDABLE, "MS_UNBINDABLE"}, {unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_NOATIME, "MS_NOATIME"}, {unix.MS_RELATIME, "MS_RELATIME"},
}

func flagString(f uintptr) string {
	var parts []string
	for _, fn := range flagNames {
		if f&fn.f != 0 {
			parts = append(parts, fn.n)
			f &^= fn.f
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	return strings.Join(parts, "|")
}

func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &mountError{op: "mount", source: source, target: target, fstype: fstype, flags: flags, data: data, err: err}
	}
	return nil
}

// mountOptions splits OCI mount options into flags, propagation flags and
// the filesystem data string.
func mountOptions(opts []string) (flags, propagation uintptr, data string, bind bool) {
	type fl struct {
		clear bool
		f     uintptr
	}
	known := map[string]fl{
		"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
		"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
		"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
		"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
		"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
		"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
		"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
		"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
		"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
		"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
		"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
		"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	}
	props := map[string]uintptr{
		"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
		"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
		"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
		"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	}
	var d []string
	for _, o := range opts {
		if f, ok := known[o]; ok {
			if f.clear {
				flags &^= f.f
			} else {
				flags |= f.f
			}
			if o == "bind" || o == "rbind" {
				bind = true
			}
			continue
		}
		if p, ok := props[o]; ok {
			propagation |= p
			continue
		}
		d = append(d, o)
	}
	return flags, propagation, strings.Join(d, ","), bind
}

// securePath resolves unsafePath inside root, following symlinks as if
// root were "/" so no path can escape it.
func securePath(root, unsafePath string) (string, error) {
	const maxLinks = 255
	var resolved string // inside root, always starting with "/" or empty
	rest := filepath.Clean("/" + unsafePath)
	links := 0
	for rest != "" {
		var part string
		rest = strings.TrimPrefix(rest, "/")
		part, rest, _ = strings.Cut(rest, "/")
		if rest != "" {
			rest = "/" + rest
		}
		switch part {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir("/" + resolved)
			if resolved == "/" {
				resolved = ""
			}
			continue
		}
		next := resolved + "/" + part
		fi, err := os.Lstat(root + next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("resolve %s in %s: too many symlinks", unsafePath, root)
		}
		dest, err := os.Readlink(root + next)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", unsafePath, err)
		}
		if filepath.IsAbs(dest) {
			resolved = ""
		}
		rest = "/" + dest + rest
	}
	return root + filepath.Clean("/"+resolved), nil
}

// mountRootfs mounts the container's root filesystem on dir.
func mountRootfs(dir string, ms []RootfsMount, root *specs.Root) error {
	if len(ms) == 0 {
		if root == nil || root.Path == "" {
			return errors.New("no root filesystem: neither rootfs mounts nor root path")
		}
		return mount(root.Path, dir, "", unix.MS_BIND|unix.MS_REC, "")
	}
	for _, m := range ms {
		flags, _, data, bind := mountOptions(m.Options)
		typ := m.Type
		if bind || typ == "bind" {
			typ = ""
			flags |= unix.MS_BIND
		}
		if err := mount(m.Source, dir, typ, flags&^unix.MS_RDONLY, data); err != nil {
			return err
		}
		if flags&unix.MS_RDONLY != 0 {
			if err := remountReadonly(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// mountSpecMount mounts one entry of spec.Mounts inside rootfs.
func mountSpecMount(rootfs string, m specs.Mount) error {
	dest, err := securePath(rootfs, m.Destination)
	if err != nil {
		return err
	}
	flags, prop, data, bind := mountOptions(m.Options)
	if m.Type == "bind" {
		bind = true
		flags |= unix.MS_BIND
	}
	if bind {
		st, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		if err := makeMountpoint(dest, st.IsDir()); err != nil {
			return err
		}
		if err := mount(m.Source, dest, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return err
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			if err := remountBind(dest, rest); err != nil {
				return err
			}
		}
	} else {
		if err := makeMountpoint(dest, true); err != nil {
			return err
		}
		switch m.Type {
		case "cgroup", "cgroup2":
			// The container sees its own cgroup as the root of a cgroup2
			// mount, through its cgroup namespace.
			if err := mount("cgroup2", dest, "cgroup2", flags, ""); err != nil {
				return err
			}
		default:
			if err := mount(m.Source, dest, m.Type, flags, data); err != nil {
				return err
			}
		}
	}
	if prop != 0 {
		if err := mount("", dest, "", prop, ""); err != nil {
			return err
		}
	}
	return nil
}

// makeMountpoint creates dest as a directory or an empty file.
func makeMountpoint(dest string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		if fi, serr := os.Stat(dest); serr == nil && !fi.IsDir() {
			return nil
		}
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return f.Close()
}

// remountBind applies flags to the bind mount at dest, keeping the flags
// the mount already has that the kernel refuses to drop.
func remountBind(dest string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dest, err)
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	return mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|flags|keep, "")
}

func remountReadonly(dest string) error { return remountBind(dest, unix.MS_RDONLY) }

// createDevices makes the device nodes of devs under rootfs/dev, plus the
// /dev symlinks every container has.
func createDevices(rootfs string, devs []specs.LinuxDevice) error {
	for _, d := range devs {
		dest, err := securePath(rootfs, d.Path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(dest), err)
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(d.FileMode.Perm())
		}
		switch d.Type {
		case "c", "u":
			mode |= unix.S_IFCHR
		case "b":
			mode |= unix.S_IFBLK
		case "p":
			mode |= unix.S_IFIFO
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		os.Remove(dest)
		if err := unix.Mknod(dest, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		// mknod is subject to the umask; set the mode exactly.
		if err := unix.Chmod(dest, mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", d.Path, err)
		}
		uid, gid := 0, 0
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if uid != 0 || gid != 0 {
			if err := unix.Chown(dest, uid, gid); err != nil {
				return fmt.Errorf("chown %s: %w", d.Path, err)
			}
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"/proc/kcore", "/dev/core"}, {"pts/ptmx", "/dev/ptmx"},
	}
	for _, l := range links {
		dest := filepath.Join(rootfs, l[1])
		os.Remove(dest)
		if err := os.Symlink(l[0], dest); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// hostDevices lists the character and block devices of the host's /dev
// (not below /dev/pts, /dev/shm or /dev/mqueue), for --privileged.
func hostDevices() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	filepath.WalkDir("/dev", func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if de.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: p, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
			FileMode: fileMode(os.FileMode(st.Mode & 0o777)), UID: &uid, GID: &gid,
		})
		return nil
	})
	return out
}

// pivotRoot makes rootfs the root of the mount namespace and detaches the
// old root, as runc does with pivot_root(".", ".").
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("fchdir old root: %w", err)
	}
	// The old root is stacked on "."; no event may propagate to the host.
	if err := mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over a
// directory. Missing paths are fine.
func maskPath(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if st.IsDir() {
		return mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	}
	return mount("/dev/null", p, "", unix.MS_BIND, "")
}

// readonlyPath makes p a read-only bind of itself. Missing paths are fine.
func readonlyPath(p string) error {
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read-only %s: %w", p, err)
	}
	if err := mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return remountReadonly(p)
}

// setSysctl writes key (net.ipv4.ip_forward) under /proc/sys.
func setSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
