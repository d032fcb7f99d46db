package pid1

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

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

// newRootDir is where the tmpfs root is assembled inside the initramfs.
const newRootDir = "/.berth-root"

// switchRoot moves the initramfs contents into a tmpfs, makes the tmpfs the
// root (MS_MOVE + chroot: pivot_root refuses the initramfs) and re-executes
// the agent there. Files are deleted from the initramfs as they are copied,
// so its memory is given back.
func switchRoot() error {
	if err := mount("tmpfs", newRootDir, "tmpfs", 0, "mode=0755"); err != nil {
		return err
	}
	if err := moveTree("/", newRootDir, newRootDir); err != nil {
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
	env := append(os.Environ(), stageEnv)
	if err := unix.Exec(AgentPath, []string{AgentPath, "init"}, env); err != nil {
		return fmt.Errorf("exec %s: %w", AgentPath, err)
	}
	return nil
}

// moveTree copies the tree at src into dst (skipping skip) and removes what
// it copied from src.
func moveTree(src, dst, skip string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read dir %s: %w", src, err)
	}
	for _, e := range entries {
		from := filepath.Join(src, e.Name())
		to := filepath.Join(dst, e.Name())
		if from == skip {
			continue
		}
		fi, err := os.Lstat(from)
		if err != nil {
			return fmt.Errorf("stat %s: %w", from, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := st.Mode & 0o7777
		switch fi.Mode().Type() {
		case os.ModeDir:
			if err := os.Mkdir(to, 0o700); err != nil && !os.IsExist(err) {
				return fmt.Errorf("make %s: %w", to, err)
			}
			if err := moveTree(from, to, skip); err != nil {
				return err
			}
			if err := unix.Chmod(to, mode); err != nil {
				return fmt.Errorf("chmod %s: %w", to, err)
			}
			_ = os.Remove(from)
		case os.ModeSymlink:
			target, err := os.Readlink(from)
			if err != nil {
				return fmt.Errorf("read link %s: %w", from, err)
			}
			if err := os.Symlink(target, to); err != nil {
				return fmt.Errorf("link %s: %w", to, err)
			}
			_ = os.Remove(from)
		case 0:
			if err := copyFile(from, to, mode); err != nil {
				return err
			}
			_ = os.Remove(from)
		default: // device nodes, fifos, sockets
			if err := unix.Mknod(to, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", to, err)
			}
		}
	}
	return nil
}

func copyFile(from, to string, mode uint32) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("open %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode&0o777))
	if err != nil {
		return fmt.Errorf("create %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", to, err)
	}
	if err := unix.Chmod(to, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", to, err)
	}
	return nil
}
