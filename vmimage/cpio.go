package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Entry is one file of the initrd.
type Entry struct {
	Path     string // relative, no leading slash; "." is the root
	Mode     uint32 // type and permission bits (S_IF* | perm)
	Source   string // host file with the contents of a regular file
	Data     []byte // contents of a regular file when Source is empty
	Link     string // symlink target
	DevMajor uint32 // device numbers of a device node
	DevMinor uint32
}

// File type bits of cpio modes.
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// Archive is a set of initrd entries keyed by path.
type Archive struct {
	entries map[string]*Entry
}

// NewArchive returns an archive holding only the root directory.
func NewArchive() *Archive {
	a := &Archive{entries: map[string]*Entry{}}
	a.entries["."] = &Entry{Path: ".", Mode: modeDir | 0o755}
	return a
}

// Add adds e, first adding any missing parent directory (mode 0755). A later
// Add of the same path replaces the earlier one.
func (a *Archive) Add(e Entry) error {
	p := path.Clean(strings.TrimPrefix(e.Path, "/"))
	if p == ".." || strings.HasPrefix(p, "../") || p == "" {
		return fmt.Errorf("initrd entry %q escapes the root", e.Path)
	}
	e.Path = p
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = &Entry{Path: dir, Mode: modeDir | 0o755}
		}
	}
	a.entries[p] = &e
	return nil
}

// Paths returns the entry paths in archive order.
func (a *Archive) Paths() []string {
	paths := make([]string, 0, len(a.entries))
	for p := range a.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// WriteTo writes the archive as cpio newc: entries sorted by path, inode
// numbers in that order, owner root, every mtime set to mtime.
func (a *Archive) WriteTo(w io.Writer, mtime int64) error {
	cw := &countWriter{w: w}
	for i, p := range a.Paths() {
		e := a.entries[p]
		var data []byte
		switch e.Mode & 0o170000 {
		case modeFile:
			if e.Source != "" {
				b, err := os.ReadFile(e.Source)
				if err != nil {
					return fmt.Errorf("initrd entry %s: %w", p, err)
				}
				data = b
			} else {
				data = e.Data
			}
		case modeSymlink:
			data = []byte(e.Link)
		}
		nlink := 1
		if e.Mode&0o170000 == modeDir {
			nlink = 2
		}
		if err := writeCpioEntry(cw, p, uint32(i+1), e.Mode, nlink, mtime, data, e.DevMajor, e.DevMinor); err != nil {
			return err
		}
	}
	return writeCpioEntry(cw, "TRAILER!!!", 0, 0, 1, 0, nil, 0, 0)
}

func writeCpioEntry(cw *countWriter, name string, ino, mode uint32, nlink int, mtime int64, data []byte, major, minor uint32) error {
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, uint32(mtime), len(data), 0, 0, major, minor, len(name)+1, 0)
	hdr.WriteString(name)
	hdr.WriteByte(0)
	if _, err := cw.Write(hdr.Bytes()); err != nil {
		return err
	}
	if err := cw.pad4(); err != nil {
		return err
	}
	if _, err := cw.Write(data); err != nil {
		return err
	}
	return cw.pad4()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) pad4() error {
	if r := c.n % 4; r != 0 {
		_, err := c.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// CpioHeader is a decoded newc header, used to read archives back.
type CpioHeader struct {
	Name     string
	Ino      uint32
	Mode     uint32
	NLink    uint32
	MTime    uint32
	Size     uint32
	DevMajor uint32
	DevMinor uint32
}

// ReadCpio decodes a newc archive, calling fn for each entry before the
// trailer with the entry's data.
func ReadCpio(r io.Reader, fn func(h CpioHeader, data []byte) error) error {
	var off int64
	read := func(n int64) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		off += n
		return b, err
	}
	skipPad := func() error {
		if p := off % 4; p != 0 {
			_, err := read(4 - p)
			return err
		}
		return nil
	}
	for {
		raw, err := read(110)
		if err != nil {
			return fmt.Errorf("cpio header at %d: %w", off-110, err)
		}
		if string(raw[:6]) != "070701" {
			return fmt.Errorf("cpio header at %d: bad magic %q", off-110, raw[:6])
		}
		var f [13]uint32
		for i := range f {
			var v uint32
			if _, err := fmt.Sscanf(string(raw[6+8*i:14+8*i]), "%08X", &v); err != nil {
				return fmt.Errorf("cpio header at %d field %d: %w", off-110, i, err)
			}
			f[i] = v
		}
		nameSize := f[11]
		if nameSize == 0 || nameSize > 4096 {
			return fmt.Errorf("cpio header at %d: name size %d", off-110, nameSize)
		}
		name, err := read(int64(nameSize))
		if err != nil {
			return fmt.Errorf("cpio name: %w", err)
		}
		if err := skipPad(); err != nil {
			return err
		}
		h := CpioHeader{Name: strings.TrimRight(string(name), "\x00"), Ino: f[0], Mode: f[1], NLink: f[4], MTime: f[5], Size: f[6], DevMajor: f[9], DevMinor: f[10]}
		if h.Size > 1<<30 {
			return fmt.Errorf("cpio entry %s: size %d too large", h.Name, h.Size)
		}
		data, err := read(int64(h.Size))
		if err != nil {
			return fmt.Errorf("cpio entry %s data: %w", h.Name, err)
		}
		if err := skipPad(); err != nil {
			return err
		}
		if h.Name == "TRAILER!!!" {
			return nil
		}
		if err := fn(h, data); err != nil {
			return err
		}
	}
}
