//go:build linux

package engine

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berthdesktop/berth/guestagent/image"
	"golang.org/x/sys/unix"
)

// withRootfsView mounts container id's root filesystem on a temporary
// directory of the engine for fn. A read-only view stacks the container's
// own layer on its image's layers as lower layers only, so it never
// competes with the running container's mount of the same upper layer; a
// writable view is the container's own overlay (for a stopped container).
func (e *Engine) withRootfsView(id string, writable bool, fn func(root string) error) error {
	ms, err := e.cfg.Images.RootfsMounts(id)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", id, err)
	}
	if len(ms) != 1 {
		return fmt.Errorf("rootfs of container %s: %d mounts, want 1", id, len(ms))
	}
	base := e.cfg.ExecRoot
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "rootfs-view-")
	if err != nil {
		return fmt.Errorf("rootfs view of %s: %w", id, err)
	}
	defer os.Remove(dir)
	if err := mountView(ms[0], dir, writable); err != nil {
		return fmt.Errorf("rootfs view of %s: %w", id, err)
	}
	defer func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			e.log.Warn("unmounting rootfs view", "container", id, "err", err)
		}
	}()
	return fn(dir)
}

// mountView mounts one rootfs mount on dir.
func mountView(m image.Mount, dir string, writable bool) error {
	if m.Type != "overlay" {
		flags := uintptr(unix.MS_BIND | unix.MS_REC)
		if err := unix.Mount(m.Source, dir, "", flags, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.Source, dir, err)
		}
		if !writable {
			return unix.Mount("", dir, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, "")
		}
		return nil
	}
	var lower, upper string
	var rest []string
	for _, o := range m.Options {
		switch {
		case strings.HasPrefix(o, "lowerdir="):
			lower = strings.TrimPrefix(o, "lowerdir=")
		case strings.HasPrefix(o, "upperdir="):
			upper = strings.TrimPrefix(o, "upperdir=")
		case strings.HasPrefix(o, "workdir="):
		default:
			rest = append(rest, o)
		}
	}
	if writable {
		if err := unix.Mount("overlay", dir, "overlay", 0, strings.Join(m.Options, ",")); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", dir, err)
		}
		return nil
	}
	data := append([]string{"lowerdir=" + upper + ":" + lower}, rest...)
	if err := unix.Mount("overlay", dir, "overlay", unix.MS_RDONLY, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount read-only overlay on %s: %w", dir, err)
	}
	return nil
}

// overlayDirs returns the upper and lower directories of container id's
// rootfs.
func (e *Engine) overlayDirs(id string) (upper string, lowers []string, err error) {
	ms, err := e.cfg.Images.RootfsMounts(id)
	if err != nil {
		return "", nil, fmt.Errorf("rootfs of container %s: %w", id, err)
	}
	if len(ms) != 1 || ms[0].Type != "overlay" {
		return "", nil, errNotImplemented{fmt.Errorf("rootfs of container %s is not an overlay", id)}
	}
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			upper = v
		}
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lowers = strings.Split(v, ":")
		}
	}
	if upper == "" {
		return "", nil, fmt.Errorf("rootfs of container %s has no upper layer", id)
	}
	return upper, lowers, nil
}

// errLoop is returned when resolving a path meets too many symlinks.
var errLoop = errors.New("too many levels of symbolic links")

// resolveScoped resolves p inside root as the container would see it:
// symlinks are followed with root as "/", ".." never climbs above it.
// followLast says whether a symlink in the last component is followed.
// The result is relative to root ("" for root itself). Missing
// components are kept as they are.
func resolveScoped(root, p string, followLast bool) (string, error) {
	queue := splitPath(p)
	resolved := ""
	links := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = parentOf(resolved)
			continue
		}
		next := c
		if resolved != "" {
			next = resolved + "/" + c
		}
		last := len(queue) == 0
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				rest := append([]string{next}, queue...)
				return strings.Join(cleanParts(rest), "/"), nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && (!last || followLast) {
			links++
			if links > 40 {
				return "", errLoop
			}
			target, err := os.Readlink(filepath.Join(root, next))
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				resolved = ""
			}
			queue = append(splitPath(target), queue...)
			continue
		}
		resolved = next
	}
	return resolved, nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// cleanParts joins a resolved prefix with unresolved components, keeping
// ".." from climbing above the root.
func cleanParts(parts []string) []string {
	var out []string
	for _, p := range parts {
		for _, c := range strings.Split(p, "/") {
			switch c {
			case "", ".":
			case "..":
				if len(out) > 0 {
					out = out[:len(out)-1]
				}
			default:
				out = append(out, c)
			}
		}
	}
	return out
}

// copyUpVolume copies what the image has at dst (resolved inside root)
// into the empty volume directory vol: ownership, modes, times, symlinks,
// device nodes and xattrs, as dockerd's copy-up does. Nothing at dst, or
// something that is not a directory, copies nothing.
func copyUpVolume(root, dst, vol string) error {
	rel, err := resolveScoped(root, dst, true)
	if err != nil {
		return err
	}
	src := filepath.Join(root, rel)
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	out, err := os.OpenRoot(vol)
	if err != nil {
		return err
	}
	defer out.Close()
	type dirTimes struct {
		rel string
		fi  fs.FileInfo
	}
	var dirs []dirTimes
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		name := r
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case r == ".":
			name = "."
		case fi.IsDir():
			if err := out.Mkdir(name, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyRegular(p, out, name, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := out.Symlink(target, name); err != nil {
				return err
			}
		case st != nil:
			if err := unix.Mknod(filepath.Join(vol, name), st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			if err := out.Lchown(name, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := out.Chmod(name, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return err
			}
		}
		copyXattrs(p, filepath.Join(vol, name))
		if fi.IsDir() {
			dirs = append(dirs, dirTimes{name, fi})
		} else if fi.Mode()&fs.ModeSymlink == 0 {
			_ = out.Chtimes(name, fi.ModTime(), fi.ModTime())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = out.Chtimes(dirs[i].rel, dirs[i].fi.ModTime(), dirs[i].fi.ModTime())
	}
	return nil
}

func copyRegular(src string, out *os.Root, name string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := out.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyXattrs copies the extended attributes of src to dst where the
// filesystem allows (best effort, like dockerd's copy-up); overlay's own
// attributes are left behind.
func copyXattrs(src, dst string) {
	sz, err := unix.Llistxattr(src, nil)
	if err != nil || sz <= 0 {
		return
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsz, err := unix.Lgetxattr(src, name, nil)
		if err != nil || vsz < 0 {
			continue
		}
		val := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(src, name, val)
		if err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, name, val[:vsz], 0)
	}
}
