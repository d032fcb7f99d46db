//go:build linux

package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
)

var _ api.ArchiveBackend = (*Engine)(nil)

// withContainerFS runs fn on a directory showing container name's
// filesystem as its processes see it: /proc/PID/root while it runs;
// otherwise its rootfs (read-only unless writable) with its volumes and
// binds mounted where their destinations exist.
func (e *Engine) withContainerFS(name string, writable bool, fn func(c *ctr, root string) error) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	pid := 0
	if c.m.State.Running && c.h != nil {
		pid = c.h.Pid()
	}
	id := c.m.ID
	mounts := append([]container.MountPoint(nil), c.m.Mounts...)
	c.mu.Unlock()
	if pid > 0 {
		return fn(c, "/proc/"+strconv.Itoa(pid)+"/root")
	}
	// A stopped container's own overlay is mounted writable: mount points
	// of its volumes are made in it, as its next start would.
	return e.withRootfsView(id, true, func(root string) error {
		for _, mp := range mounts {
			if mp.Type != mount.TypeVolume && mp.Type != mount.TypeBind {
				continue
			}
			rel, err := resolveScoped(root, mp.Destination, true)
			if err != nil {
				continue
			}
			if mp.Type == mount.TypeVolume {
				// The runtime makes the mount point at start; make it now.
				if fsys, err := os.OpenRoot(root); err == nil {
					_ = fsys.MkdirAll(rel, 0o755)
					fsys.Close()
				}
			}
			dst := filepath.Join(root, rel)
			if fi, err := os.Lstat(dst); err != nil || !fi.IsDir() {
				continue
			}
			flags := uintptr(unix.MS_BIND | unix.MS_REC)
			if err := unix.Mount(mp.Source, dst, "", flags, ""); err != nil {
				e.log.Warn("mounting a volume for docker cp", "container", id, "destination", mp.Destination, "err", err)
				continue
			}
			if !mp.RW || !writable {
				_ = unix.Mount("", dst, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, "")
			}
		}
		return fn(c, root)
	})
}

func errNoSuchPath(p, ctrName string) error {
	return notFound("Could not find the file %s in container %s", p, strings.TrimPrefix(ctrName, "/"))
}

// wantsFollow reports whether a docker cp path asks for what a symlink
// points to: a trailing "/" or "/.".
func wantsFollow(p string) bool {
	return strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
}

// statIn describes p inside root.
func statIn(root, p, ctrName string) (*container.PathStat, string, error) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	rel, err := resolveScoped(root, p, wantsFollow(p))
	if err != nil {
		return nil, "", err
	}
	fsys, err := os.OpenRoot(root)
	if err != nil {
		return nil, "", fmt.Errorf("open container filesystem: %w", err)
	}
	defer fsys.Close()
	name := rel
	if name == "" {
		name = "."
	}
	fi, err := fsys.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", errNoSuchPath(p, ctrName)
	}
	if err != nil {
		return nil, "", err
	}
	st := &container.PathStat{Name: path.Base(p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := resolveScoped(root, p, true)
		if err == nil {
			st.LinkTarget = "/" + target
		}
	}
	if st.Name == "" || st.Name == "/" {
		st.Name = "/"
	}
	return st, rel, nil
}

// ContainerStatPath implements api.ArchiveBackend.
func (e *Engine) ContainerStatPath(ctx context.Context, name, p string) (*container.PathStat, error) {
	var st *container.PathStat
	err := e.withContainerFS(name, false, func(c *ctr, root string) error {
		var err error
		st, _, err = statIn(root, p, c.m.Name)
		return err
	})
	return st, err
}

// ContainerArchivePath implements api.ArchiveBackend. The tar is made
// while the container's filesystem is held, into a pipe the caller
// drains.
func (e *Engine) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *container.PathStat, error) {
	type result struct {
		st  *container.PathStat
		err error
	}
	pr, pw := io.Pipe()
	first := make(chan result, 1)
	go func() {
		sent := false
		err := e.withContainerFS(name, false, func(c *ctr, root string) error {
			st, rel, err := statIn(root, p, c.m.Name)
			if err != nil {
				return err
			}
			first <- result{st: st}
			sent = true
			return writeTree(pw, root, rel, path.Base(p))
		})
		if !sent {
			first <- result{err: err}
		}
		pw.CloseWithError(err)
	}()
	r := <-first
	if r.err != nil {
		pr.Close()
		return nil, nil, r.err
	}
	return pr, r.st, nil
}

// writeTree writes rel (inside root) as a tar whose entries are named
// under rebase, without following symlinks.
func writeTree(w io.Writer, root, rel, rebase string) error {
	fsys, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer fsys.Close()
	tw := tar.NewWriter(w)
	start := rel
	if start == "" {
		start = "."
	}
	err = fs.WalkDir(fsys.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub := strings.TrimPrefix(strings.TrimPrefix(p, start), "/")
		entry := rebase
		if sub != "" {
			entry = rebase + "/" + sub
		}
		return writeEntry(tw, fsys, p, entry)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// writeEntry adds one file of fsys to tw under name.
func writeEntry(tw *tar.Writer, fsys *os.Root, p, name string) error {
	fi, err := fsys.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = fsys.Readlink(p); err != nil {
			return err
		}
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if fi.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}

// ContainerExtractToDir implements api.ArchiveBackend.
func (e *Engine) ContainerExtractToDir(ctx context.Context, name, p string, opts api.ExtractOptions, content io.Reader) error {
	return e.withContainerFS(name, true, func(c *ctr, root string) error {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		rel, err := resolveScoped(root, p, true)
		if err != nil {
			return err
		}
		fsys, err := os.OpenRoot(root)
		if err != nil {
			return err
		}
		defer fsys.Close()
		dir := rel
		if dir == "" {
			dir = "."
		}
		fi, err := fsys.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return errNoSuchPath(p, c.m.Name)
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return invalid("extraction point is not a directory")
		}
		c.mu.Lock()
		ro := c.m.HostConfig.ReadonlyRootfs
		c.mu.Unlock()
		if ro && !insideWritableMount(c, "/"+rel) {
			return errForbidden{fmt.Errorf("container rootfs is marked read-only")}
		}
		target, err := fsys.OpenRoot(dir)
		if err != nil {
			return err
		}
		defer target.Close()
		return extractTar(target, content, opts)
	})
}

// insideWritableMount reports whether p lies in a writable volume or bind
// of c.
func insideWritableMount(c *ctr, p string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mp := range c.m.Mounts {
		if mp.RW && (p == mp.Destination || strings.HasPrefix(p, mp.Destination+"/")) {
			return true
		}
	}
	return false
}

type errForbidden struct{ error }

func (errForbidden) Forbidden()      {}
func (e errForbidden) Unwrap() error { return e.error }

// extractTar unpacks a docker cp archive into root. Every path operation
// goes through root, so nothing lands outside it: names climbing out
// with "..", writes through symlinks leaving it and hard links to
// outside files are refused. Whiteout names have no meaning here.
func extractTar(root *os.Root, r io.Reader, opts api.ExtractOptions) error {
	tr := tar.NewReader(r)
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return invalid("reading archive: %v", err)
		}
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparseRecords(hdr) {
			// A sparse entry's holes cost no input: a small archive could
			// fill the disk.
			return invalid("archive entry %q: sparse files are not supported", hdr.Name)
		}
		name, err := snapshot.CleanEntryPath(hdr.Name)
		if err != nil {
			return invalid("archive entry %q: %v", hdr.Name, err)
		}
		if name == "" {
			name = "."
		}
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return entryError(hdr.Name, err)
			}
		}
		existing, lerr := root.Lstat(name)
		exists := lerr == nil
		isDir := hdr.Typeflag == tar.TypeDir
		if exists && opts.NoOverwriteDirNonDir && existing.IsDir() != isDir {
			if isDir {
				return invalid("cannot overwrite non-directory %q with directory %q", "/"+name, "/"+name)
			}
			return invalid("cannot overwrite directory %q with non-directory %q", "/"+name, "/"+name)
		}
		if exists && !(isDir && existing.IsDir()) && name != "." {
			if err := root.RemoveAll(name); err != nil {
				return entryError(hdr.Name, err)
			}
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !exists || !existing.IsDir() {
				if err := root.Mkdir(name, mode); err != nil {
					return entryError(hdr.Name, err)
				}
			}
		case tar.TypeReg, tar.TypeRegA:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return entryError(hdr.Name, err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return entryError(hdr.Name, err)
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return entryError(hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := snapshot.CleanEntryPath(hdr.Linkname)
			if err != nil || target == "" {
				return invalid("archive entry %q: invalid hard link target %q", hdr.Name, hdr.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return entryError(hdr.Name, err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if err := mknodIn(root, name, hdr); err != nil {
				return entryError(hdr.Name, err)
			}
		default:
			continue // pax headers and the like
		}
		uid, gid := 0, 0
		if opts.CopyUIDGID {
			uid, gid = hdr.Uid, hdr.Gid
		}
		if err := root.Lchown(name, uid, gid); err != nil {
			return entryError(hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			continue
		}
		fm := fs.FileMode(hdr.Mode).Perm()
		if hdr.Mode&04000 != 0 {
			fm |= fs.ModeSetuid
		}
		if hdr.Mode&02000 != 0 {
			fm |= fs.ModeSetgid
		}
		if hdr.Mode&01000 != 0 {
			fm |= fs.ModeSticky
		}
		if err := root.Chmod(name, fm); err != nil {
			return entryError(hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{name, hdr.ModTime})
			continue
		}
		_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirs[i].name, dirs[i].t, dirs[i].t)
	}
	return nil
}

// mknodIn makes a device node or FIFO name inside root, relative to its
// parent directory opened through root.
func mknodIn(root *os.Root, name string, hdr *tar.Header) error {
	parent, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	return unix.Mknodat(int(parent.Fd()), path.Base(name), mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
}

// ContainerExport implements api.ArchiveBackend: the container's root
// filesystem (its layer over its image), without volumes or binds.
func (e *Engine) ContainerExport(ctx context.Context, name string) (io.ReadCloser, error) {
	c, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	id := c.m.ID
	st := c.m.State
	c.mu.Unlock()
	if st.RemovalInProgress || st.Dead {
		return nil, conflict("cannot export container %s which is being removed or is dead", id)
	}
	pr, pw := io.Pipe()
	started := make(chan error, 1)
	go func() {
		sent := false
		err := e.withRootfsView(id, false, func(root string) error {
			started <- nil
			sent = true
			fsys, err := os.OpenRoot(root)
			if err != nil {
				return err
			}
			defer fsys.Close()
			tw := tar.NewWriter(pw)
			err = fs.WalkDir(fsys.FS(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if p == "." {
					return nil
				}
				return writeEntry(tw, fsys, p, p)
			})
			if err != nil {
				return err
			}
			return tw.Close()
		})
		if !sent {
			started <- err
		}
		pw.CloseWithError(err)
	}()
	if err := <-started; err != nil {
		pr.Close()
		return nil, err
	}
	e.emit(c, "export", nil)
	return pr, nil
}

// ContainerChanges implements api.ArchiveBackend: docker diff, from the
// container's own layer. A whiteout is a deletion; a path its image has
// is a change, any other an addition. Mount points the engine made for
// the container (/proc, /etc/hosts, ...) are not changes the user made.
func (e *Engine) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	c, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	m := c.m
	c.mu.Unlock()
	upper, lowers, err := e.overlayDirs(m.ID)
	if err != nil {
		return nil, err
	}
	mountDsts := map[string]bool{}
	if s, _, err := e.buildSpec(&m); err == nil {
		for _, mt := range s.Mounts {
			mountDsts[mt.Destination] = true
		}
	}
	var all []container.FilesystemChange
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		ctrPath := "/" + rel
		fi, err := d.Info()
		if err != nil {
			return err
		}
		kind := container.ChangeAdd
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			kind = container.ChangeDelete
		} else {
			for _, l := range lowers {
				if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
					kind = container.ChangeModify
					break
				}
			}
		}
		all = append(all, container.FilesystemChange{Path: ctrPath, Kind: kind})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", m.ID, err)
	}
	return filterChanges(all, mountDsts), nil
}

// filterChanges drops the engine's mount points and the directories that
// hold nothing else changed.
func filterChanges(all []container.FilesystemChange, mountDsts map[string]bool) []container.FilesystemChange {
	under := func(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }
	var kept []container.FilesystemChange
	for _, ch := range all {
		if !mountDsts[ch.Path] {
			kept = append(kept, ch)
		}
	}
	var out []container.FilesystemChange
	for _, ch := range kept {
		hasChild := false
		ancestorOfMount := false
		for _, o := range kept {
			if under(o.Path, ch.Path) {
				hasChild = true
				break
			}
		}
		for d := range mountDsts {
			if under(d, ch.Path) {
				ancestorOfMount = true
			}
		}
		if !hasChild && ancestorOfMount {
			continue
		}
		if !hasChild && ch.Kind == container.ChangeModify && isDirChange(ch, all) {
			continue
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// isDirChange reports whether ch is a directory entry: some change in all
// lies under it or it was recorded as a directory. Without children it is
// only a side effect of a mount point.
func isDirChange(ch container.FilesystemChange, all []container.FilesystemChange) bool {
	for _, o := range all {
		if strings.HasPrefix(o.Path, ch.Path+"/") {
			return true
		}
	}
	return false
}

func hasSparseRecords(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// entryError is a failure to unpack one entry of a docker cp archive: the
// client's archive is at fault (it climbs out of the destination, or
// clashes with what is there), so it maps to 400.
func entryError(name string, err error) error {
	return errInvalid{fmt.Errorf("archive entry %q: %w", name, err)}
}
