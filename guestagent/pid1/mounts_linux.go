package pid1

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mountError names the mount that failed, as runc's mountError does.
type mountError struct {
	source, target, fstype string
	flags                  uintptr
	err                    error
}

func (e *mountError) Error() string {
	return fmt.Sprintf("mount %s (%s) on %s flags %#x: %v", e.source, e.fstype, e.target, e.flags, e.err)
}

func (e *mountError) Unwrap() error { return e.err }

func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount point %s: %w", target, err)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &mountError{source: source, target: target, fstype: fstype, flags: flags, err: err}
	}
	return nil
}

// mountBase mounts the kernel filesystems and the tmpfs directories.
func mountBase() error {
	const nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	steps := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		{"proc", "/proc", "proc", nosuidNodevNoexec, ""},
		{"sysfs", "/sys", "sysfs", nosuidNodevNoexec, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"shm", "/dev/shm", "tmpfs", nosuidNodevNoexec, "mode=1777"},
		{"mqueue", "/dev/mqueue", "mqueue", nosuidNodevNoexec, ""},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuidNodevNoexec, ""},
	}
	for _, s := range steps {
		if err := mount(s.source, s.target, s.fstype, s.flags, s.data); err != nil {
			return err
		}
	}
	// Optional kernel filesystems: missing ones are not fatal.
	_ = mount("securityfs", "/sys/kernel/security", "securityfs", nosuidNodevNoexec, "")
	_ = mount("bpf", "/sys/fs/bpf", "bpf", nosuidNodevNoexec, "mode=0700")
	_ = mount("debugfs", "/sys/kernel/debug", "debugfs", nosuidNodevNoexec, "")
	if _, err := os.Lstat("/dev/ptmx"); err == nil {
		_ = os.Remove("/dev/ptmx")
	}
	links := map[string]string{
		"/dev/ptmx":   "pts/ptmx",
		"/dev/fd":     "/proc/self/fd",
		"/dev/stdin":  "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1",
		"/dev/stderr": "/proc/self/fd/2",
		"/etc/mtab":   "/proc/self/mounts",
	}
	for name, target := range links {
		_ = os.Remove(name)
		if err := os.Symlink(target, name); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	for _, d := range []string{"/var/log", "/var/tmp", ExecRoot, "/etc"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
	}
	if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\tberth\n"), 0o644); err != nil {
		return fmt.Errorf("write /etc/hosts: %w", err)
	}
	return nil
}

// newRootDir is where the new root mount is assembled inside the initramfs.
const newRootDir = "/.berth-root"

// switchRoot leaves the initramfs as root. pivot_root, which the container
// runtime needs, refuses a root mount that has no parent, and the initramfs
// (rootfs) has none. A bind mount of the initramfs onto a directory of
// itself has one: it is moved over / and made the root with chroot. Nothing
// is copied, so this costs no time and no memory; the rootfs is a tmpfs.
func switchRoot() error {
	if err := mount("/", newRootDir, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if err := os.Chdir(newRootDir); err != nil {
		return fmt.Errorf("chdir %s: %w", newRootDir, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return &mountError{source: newRootDir, target: "/", flags: unix.MS_MOVE, err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	_ = os.Remove(newRootDir)
	return nil
}
