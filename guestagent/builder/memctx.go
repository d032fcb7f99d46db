//go:build linux

package builder

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/snapshot"
)

// srcFS is a tree COPY and ADD read from: the build context, or a
// directory on disk (COPY --from, unpacked archives). Stat follows
// symbolic links, Lstat does not.
type srcFS interface {
	fs.StatFS
	fs.ReadDirFS
	fs.ReadLinkFS
}

// contentSummer is a srcFS that knows the SHA-256 of its regular files.
type contentSummer interface {
	sum(name string) ([32]byte, bool)
}

// memFS is the build context as received: the tree's metadata in memory
// and the files' content in one spool file, hashed on the way in. A
// context of thousands of small files costs one file on disk, not
// thousands, and each file is read once.
type memFS struct {
	spool    *os.File
	entries  map[string]*memEntry // by clean relative path
	children map[string]map[string]bool
}

type memEntry struct {
	hdr tar.Header
	off int64
	sum [32]byte
}

var _ srcFS = (*memFS)(nil)

func newMemFS(spoolDir string) (*memFS, error) {
	f, err := os.CreateTemp(spoolDir, "context-")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the open file is the only reference.
	_ = os.Remove(f.Name())
	m := &memFS{spool: f, entries: map[string]*memEntry{}, children: map[string]map[string]bool{}}
	return m, nil
}

func (m *memFS) Close() error { return m.spool.Close() }

// readContext reads the build context tar r into a memFS.
func readContext(spoolDir string, r io.Reader) (*memFS, error) {
	rc, _, err := decompress(r)
	if err != nil {
		return nil, fmt.Errorf("read build context: %w", err)
	}
	defer rc.Close()
	m, err := newMemFS(spoolDir)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("read build context: %w", err)
		}
		name, err := snapshot.CleanEntryPath(hdr.Name)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("build context entry %q: %w", hdr.Name, err)
		}
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeSymlink:
			m.add(name, *hdr, 0, [32]byte{})
		case tar.TypeReg, tar.TypeRegA:
			if err := m.addFile(name, *hdr, tr); err != nil {
				m.Close()
				return nil, fmt.Errorf("build context entry %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := snapshot.CleanEntryPath(hdr.Linkname)
			t, ok := m.entries[target]
			if err != nil || !ok || t.hdr.Typeflag != tar.TypeReg {
				m.Close()
				return nil, fmt.Errorf("build context entry %q: bad link target %q", hdr.Name, hdr.Linkname)
			}
			h := t.hdr
			h.Name = name
			m.add(name, h, t.off, t.sum)
		default:
			// Devices and fifos have no place in a build context.
		}
	}
}

// addFile spools a regular file's content.
func (m *memFS) addFile(name string, hdr tar.Header, r io.Reader) error {
	off, err := m.spool.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(m.spool, h), r)
	if err != nil {
		return err
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = n
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	m.add(name, hdr, off, sum)
	return nil
}

func (m *memFS) add(name string, hdr tar.Header, off int64, sum [32]byte) {
	m.entries[name] = &memEntry{hdr: hdr, off: off, sum: sum}
	for {
		dir := path.Dir(name)
		if dir == "." {
			dir = ""
		}
		kids := m.children[dir]
		if kids == nil {
			kids = map[string]bool{}
			m.children[dir] = kids
		}
		kids[path.Base(name)] = true
		if dir == "" {
			return
		}
		if _, ok := m.entries[dir]; ok {
			return
		}
		m.entries[dir] = &memEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: hdr.ModTime}}
		name = dir
	}
}

// remove deletes name and what lies below it.
func (m *memFS) remove(name string) {
	delete(m.entries, name)
	for kid := range m.children[name] {
		m.remove(path.Join(name, kid))
	}
	delete(m.children, name)
	dir := path.Dir(name)
	if dir == "." {
		dir = ""
	}
	delete(m.children[dir], path.Base(name))
}

const maxSymlinkHops = 40

// resolve finds name, following symbolic links scoped to the context's
// root (an absolute or climbing target stays inside the context, as
// Docker resolves them); followFinal follows a link at the end too.
func (m *memFS) resolve(name string, followFinal bool) (string, *memEntry, error) {
	if !fs.ValidPath(name) {
		return "", nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return "", &memEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}, nil
	}
	parts := strings.Split(name, "/")
	cur := ""
	hops := 0
	for i := 0; i < len(parts); i++ {
		p := path.Join(cur, parts[i])
		if p == "." {
			p = ""
		}
		e, ok := m.entries[p]
		if !ok {
			return "", nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
		last := i == len(parts)-1
		if e.hdr.Typeflag == tar.TypeSymlink && (!last || followFinal) {
			hops++
			if hops > maxSymlinkHops {
				return "", nil, &fs.PathError{Op: "stat", Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target := e.hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join("/", cur, target)
			}
			target = strings.TrimPrefix(path.Clean("/"+target), "/")
			rest := append(strings.Split(target, "/"), parts[i+1:]...)
			if target == "" {
				rest = parts[i+1:]
			}
			parts = rest
			cur = ""
			i = -1
			if len(parts) == 0 {
				return "", &memEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}, nil
			}
			continue
		}
		if !last && e.hdr.Typeflag != tar.TypeDir {
			return "", nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
		}
		cur = p
		if last {
			return p, e, nil
		}
	}
	return cur, m.entries[cur], nil
}

type memInfo struct {
	name string
	e    *memEntry
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.e.hdr.Size }
func (i memInfo) Mode() fs.FileMode  { return i.e.hdr.FileInfo().Mode() }
func (i memInfo) ModTime() time.Time { return i.e.hdr.ModTime }
func (i memInfo) IsDir() bool        { return i.e.hdr.Typeflag == tar.TypeDir }
func (i memInfo) Sys() any           { return &i.e.hdr }

func (m *memFS) Stat(name string) (fs.FileInfo, error) {
	p, e, err := m.resolve(name, true)
	if err != nil {
		return nil, err
	}
	return memInfo{name: path.Base("/" + p), e: e}, nil
}

func (m *memFS) Lstat(name string) (fs.FileInfo, error) {
	p, e, err := m.resolve(name, false)
	if err != nil {
		return nil, err
	}
	return memInfo{name: path.Base("/" + p), e: e}, nil
}

func (m *memFS) ReadLink(name string) (string, error) {
	_, e, err := m.resolve(name, false)
	if err != nil {
		return "", err
	}
	if e.hdr.Typeflag != tar.TypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return e.hdr.Linkname, nil
}

func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, e, err := m.resolve(name, true)
	if err != nil {
		return nil, err
	}
	if e.hdr.Typeflag != tar.TypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	names := make([]string, 0, len(m.children[p]))
	for k := range m.children[p] {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]fs.DirEntry, 0, len(names))
	for _, n := range names {
		out = append(out, fs.FileInfoToDirEntry(memInfo{name: n, e: m.entries[path.Join(p, n)]}))
	}
	return out, nil
}

func (m *memFS) Open(name string) (fs.File, error) {
	p, e, err := m.resolve(name, true)
	if err != nil {
		return nil, err
	}
	info := memInfo{name: path.Base("/" + p), e: e}
	if e.hdr.Typeflag != tar.TypeReg {
		return &memFile{info: info, r: io.NewSectionReader(strings.NewReader(""), 0, 0)}, nil
	}
	return &memFile{info: info, r: io.NewSectionReader(m.spool, e.off, e.hdr.Size)}, nil
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	f, err := m.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (m *memFS) sum(name string) ([32]byte, bool) {
	_, e, err := m.resolve(name, true)
	if err != nil || e.hdr.Typeflag != tar.TypeReg {
		return [32]byte{}, false
	}
	return e.sum, true
}

type memFile struct {
	info memInfo
	r    *io.SectionReader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

// rootFS is a directory on disk as a srcFS.
func rootFS(r *os.Root) srcFS { return r.FS().(srcFS) }
