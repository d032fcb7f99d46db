//go:build linux

package snapshot

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// CloneLayer commits layer chainID on top of parent with the same
// contents as the committed layer from (the same diff on another parent,
// so it is not extracted again): directories, symlinks and device nodes
// are recreated, regular files are hard-linked (layers are read-only, so
// sharing their inodes is safe), and the tar record is copied.
func (s *Snapshotter) CloneLayer(chainID, parent, from digest.Digest) (LayerInfo, error) {
	if _, err := s.layerDir(chainID); err != nil {
		return LayerInfo{}, err
	}
	if info, err := s.Layer(chainID); err == nil {
		return info, nil
	}
	src, err := s.Layer(from)
	if err != nil {
		return LayerInfo{}, err
	}
	srcDir, _ := s.layerDir(from)
	return s.build(parent, func(tmp string) (int64, error) {
		if err := cloneTree(filepath.Join(srcDir, "fs"), filepath.Join(tmp, "fs")); err != nil {
			return 0, err
		}
		if err := copyFile(filepath.Join(srcDir, splitFile), filepath.Join(tmp, splitFile)); err != nil && !os.IsNotExist(err) {
			return 0, err
		}
		return src.Size, nil
	}, func() (digest.Digest, error) { return chainID, nil })
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cloneTree recreates the tree src at dst (which exists), hard-linking
// regular files.
func cloneTree(src, dst string) error {
	type stamp struct {
		path string
		ts   []unix.Timespec
	}
	var dirs []stamp
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			return os.Link(p, target)
		case unix.S_IFDIR:
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, stamp{target, ts})
		case unix.S_IFLNK:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		default: // devices (whiteouts among them), fifos, sockets
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", rel, err)
			}
		}
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return err
			}
		}
		if err := copyXattrs(p, target); err != nil {
			return fmt.Errorf("xattrs of %s: %w", rel, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clone layer: %w", err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("clone layer: %w", err)
		}
	}
	return nil
}

// copyXattrs copies every extended attribute, overlay's included (the
// opaque mark must survive).
func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(src, buf)
	if err != nil {
		return err
	}
	start := 0
	for i := 0; i < n; i++ {
		if buf[i] != 0 {
			continue
		}
		name := string(buf[start:i])
		start = i + 1
		if name == "" {
			continue
		}
		vs, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vs)
		vn, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:vn], 0); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}
