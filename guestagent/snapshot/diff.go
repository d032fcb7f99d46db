//go:build linux

package snapshot

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Diff returns the changes of container layer key as an uncompressed
// layer tar: the upper directory's entries, with overlay whiteouts (0/0
// character devices) written as .wh.NAME and opaque directories as
// .wh..wh..opq, ownership, modes, mtimes, xattrs and hard links kept.
// Entries come in lexical order, so the same changes give the same tar.
// The caller should keep the container from writing meanwhile (pause it).
func (s *Snapshotter) Diff(key string) (io.ReadCloser, error) {
	if _, err := s.container(key); err != nil {
		return nil, err
	}
	dir, _ := s.containerDir(key)
	upper := filepath.Join(dir, "upper")
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeDiff(pw, upper))
	}()
	return pr, nil
}

func writeDiff(w io.Writer, upper string) error {
	tw := tar.NewWriter(w)
	links := map[uint64]string{} // inode -> first name, for hard links
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("stat %s: %w", rel, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return writeWhiteout(tw, rel, &st)
		}
		if _, err := unix.Lgetxattr(p, "trusted.overlay.redirect", nil); err == nil {
			return fmt.Errorf("%s: renamed directories (overlay redirect_dir) cannot be diffed", rel)
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", rel, err)
		}
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return fmt.Errorf("read link %s: %w", rel, err)
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime = time.Unix(st.Mtim.Unix()).UTC()
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if xattrs, err := readXattrs(p); err != nil {
			return fmt.Errorf("xattrs of %s: %w", rel, err)
		} else if len(xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[st.Ino] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("open %s: %w", rel, err)
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", rel, err)
			}
		}
		if fi.IsDir() && isOpaque(p) {
			return tw.WriteHeader(&tar.Header{Name: rel + "/" + whiteoutOpaque, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: hdr.ModTime, Format: tar.FormatPAX})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("snapshot: diff: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("snapshot: diff: %w", err)
	}
	return nil
}

func writeWhiteout(tw *tar.Writer, rel string, st *unix.Stat_t) error {
	dir, name := filepath.Split(rel)
	return tw.WriteHeader(&tar.Header{
		Name:     dir + whiteoutPrefix + name,
		Typeflag: tar.TypeReg,
		Mode:     0o600,
		ModTime:  time.Unix(st.Mtim.Unix()).UTC(),
		Format:   tar.FormatPAX,
	})
}

func isOpaque(p string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, opaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y"
}

// readXattrs returns a file's extended attributes, without overlayfs's
// own.
func readXattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		vn, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			continue
		}
		out[name] = string(val[:vn])
	}
	return out, nil
}
