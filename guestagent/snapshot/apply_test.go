//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"compress/gzip"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the extractor chowns entries and makes whiteout device nodes")
	}
}

// entry is one tar entry of a test archive.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	major    int64
	xattrs   map[string]string
	mtime    time.Time
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) entry { return entry{name: name, typ: tar.TypeLink, link: target} }

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mt := e.mtime
		if mt.IsZero() {
			mt = time.Unix(1_600_000_000, 0)
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mt, Devmajor: e.major, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fsState records everything observable about a tree, to prove it did not
// change.
func fsState(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := p + " " + strings.Join([]string{
			fs.FileMode(st.Mode).String(),
			time.Unix(st.Mtim.Unix()).String(),
		}, " ")
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		buf := make([]byte, 1024)
		if n, err := unix.Llistxattr(p, buf); err == nil {
			line += " xattrs=" + string(buf[:n])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sandbox makes parent/{target,sentinel}; the sentinel holds a file and a
// directory an escaping archive would aim for.
func sandbox(t testing.TB) (target, sentinel string) {
	parent := t.TempDir()
	target = filepath.Join(parent, "target")
	sentinel = filepath.Join(parent, "sentinel")
	for _, d := range []string{target, filepath.Join(sentinel, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "file"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_500_000_000, 0)
	for _, p := range []string{filepath.Join(sentinel, "file"), filepath.Join(sentinel, "sub"), sentinel} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return target, sentinel
}

func TestApplyRefusesEscapes(t *testing.T) {
	requireRoot(t)
	// Each archive tries to write, delete, chmod or link outside the
	// target. badEntry is the entry that must be refused ("" when the
	// archive is harmless once handled correctly, e.g. a file replacing
	// a symlink).
	type tc struct {
		name     string
		entries  func(sentinel string) []entry
		badEntry string
	}
	tests := []tc{
		{"dotdot file", func(string) []entry { return []entry{file("../sentinel/evil", "x")} }, "../sentinel/evil"},
		{"dotdot overwrite", func(string) []entry { return []entry{file("../sentinel/file", "x")} }, "../sentinel/file"},
		{"deep dotdot", func(string) []entry { return []entry{file("a/b/../../../sentinel/x", "x")} }, "a/b/../../../sentinel/x"},
		{"absolute dotdot", func(string) []entry { return []entry{file("/../sentinel/x", "x")} }, "/../sentinel/x"},
		{"dotdot directory", func(string) []entry { return []entry{dir("../sentinel/newdir/")} }, "../sentinel/newdir/"},
		{"dotdot symlink", func(string) []entry { return []entry{symlink("../sentinel/ln", "/etc")} }, "../sentinel/ln"},
		{"write through relative symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), file("link/evil", "x")}
		}, "link/evil"},
		{"write through absolute symlink", func(s string) []entry {
			return []entry{symlink("link", s), file("link/file", "x")}
		}, "link/file"},
		{"write through root symlink", func(s string) []entry {
			return []entry{symlink("link", "/"), file("link"+s+"/file", "x")}
		}, "link" + "SENTINEL" + "/file"},
		{"mkdir through symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), dir("link/newdir/")}
		}, "link/newdir/"},
		{"parents through symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), file("link/a/b/c", "x")}
		}, "link/a/b/c"},
		{"chained symlinks", func(string) []entry {
			return []entry{symlink("a", "b"), symlink("b", "../sentinel"), file("a/evil", "x")}
		}, "a/evil"},
		{"nested symlink climbing", func(string) []entry {
			return []entry{dir("d/"), symlink("d/up", "../.."), file("d/up/sentinel/evil", "x")}
		}, "d/up/sentinel/evil"},
		{"whiteout through symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), file("link/.wh.file", "")}
		}, "link/.wh.file"},
		{"opaque through symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), file("link/.wh..wh..opq", "")}
		}, "link/.wh..wh..opq"},
		{"whiteout dotdot name", func(string) []entry { return []entry{file(".wh...", "")} }, ".wh..."},
		{"whiteout dot name", func(string) []entry { return []entry{file(".wh..", "")} }, ".wh.."},
		{"hard link dotdot", func(string) []entry { return []entry{hardlink("hl", "../sentinel/file")} }, "hl"},
		{"hard link through symlink", func(string) []entry {
			return []entry{symlink("link", "../sentinel"), hardlink("hl", "link/file")}
		}, "hl"},
		{"hard link absolute", func(s string) []entry {
			return []entry{hardlink("hl", filepath.Join(s, "file"))}
		}, "hl"},
		{"char device", func(string) []entry {
			return []entry{{name: "null", typ: tar.TypeChar, mode: 0o666, major: 1}}
		}, "null"},
		{"block device", func(string) []entry {
			return []entry{{name: "sda", typ: tar.TypeBlock, mode: 0o660, major: 8}}
		}, "sda"},
		{"file replaces symlink", func(string) []entry {
			return []entry{symlink("f", "../sentinel/file"), file("f", "replaced")}
		}, ""},
		{"directory replaces symlink", func(string) []entry {
			return []entry{symlink("d", "../sentinel"), dir("d/"), file("d/file", "x")}
		}, ""},
		{"chmod via directory entry over symlink", func(string) []entry {
			return []entry{symlink("d", "../sentinel/sub"), {name: "d", typ: tar.TypeDir, mode: 0o777}}
		}, ""},
		{"hard link to symlink then write", func(string) []entry {
			return []entry{symlink("s", "../sentinel/file"), hardlink("h", "s"), file("h", "x")}
		}, ""},
		{"dotdot inside stays inside", func(string) []entry {
			return []entry{dir("a/"), file("a/../b", "inside")}
		}, ""},
		{"overlay xattr dropped", func(string) []entry {
			d := dir("d/")
			d.xattrs = map[string]string{"trusted.overlay.redirect": "/../../sentinel"}
			return []entry{d}
		}, ""},
	}
	if len(tests) < 20 {
		t.Fatalf("corpus has %d archives, want at least 20", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, sentinel := sandbox(t)
			before := fsState(t, sentinel)
			entries := tt.entries(sentinel)
			bad := strings.ReplaceAll(tt.badEntry, "SENTINEL", sentinel)
			_, err := Apply(target, bytes.NewReader(makeTar(t, entries...)), ApplyOptions{})
			if bad == "" {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
			} else {
				var ee *EntryError
				if !errors.As(err, &ee) {
					t.Fatalf("Apply error = %v, want an EntryError for %q", err, bad)
				}
				if ee.Name != bad {
					t.Fatalf("refused entry %q, want %q (%v)", ee.Name, bad, err)
				}
				if !strings.Contains(err.Error(), bad) {
					t.Fatalf("error %q does not name the entry", err)
				}
			}
			if after := fsState(t, sentinel); after != before {
				t.Fatalf("sentinel changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			parent, _ := os.ReadDir(filepath.Dir(target))
			if len(parent) != 2 {
				t.Fatalf("something was created beside the target: %v", parent)
			}
			if tt.name == "overlay xattr dropped" {
				if _, err := unix.Lgetxattr(filepath.Join(target, "d"), "trusted.overlay.redirect", make([]byte, 64)); err == nil {
					t.Fatal("trusted.overlay.redirect was copied from the archive")
				}
			}
		})
	}
}

func TestApplyContent(t *testing.T) {
	requireRoot(t)
	mtime := time.Unix(1_234_567_890, 0)
	suid := file("bin/tool", "#!/bin/sh\n")
	suid.mode = 0o4755
	owned := file("home/u/data", "secret")
	owned.uid, owned.gid, owned.mode = 1000, 1001, 0o600
	xa := file("etc/conf", "c")
	xa.xattrs = map[string]string{"user.note": "hello"}
	stamped := dir("stamped/")
	stamped.mtime = mtime
	sticky := dir("tmp/")
	sticky.mode = 0o1777
	fifo := entry{name: "run/pipe", typ: tar.TypeFifo, mode: 0o644}
	layer := makeTar(t,
		dir("bin/"), suid,
		dir("home/"), dir("home/u/"), owned,
		dir("etc/"), xa,
		stamped, file("stamped/f", "f"),
		sticky, fifo,
		symlink("bin/sh", "/bin/busybox"),
		symlink("lib", "usr/lib"), dir("usr/"), dir("usr/lib/"), file("lib/libc.so", "elf"),
		hardlink("bin/tool2", "bin/tool"),
		file("gone/.wh.old", ""),
		dir("opaque/"), file("opaque/.wh..wh..opq", ""), file("opaque/new", "n"),
		file("replaced", "one"), file("replaced", "two"),
	)
	tests := []struct {
		name  string
		check func(t *testing.T, root string)
	}{
		{"setuid mode", func(t *testing.T, root string) {
			fi, err := os.Stat(filepath.Join(root, "bin/tool"))
			if err != nil || fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
				t.Fatalf("bin/tool mode = %v, %v", fi.Mode(), err)
			}
		}},
		{"ownership", func(t *testing.T, root string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "home/u/data"), &st); err != nil || st.Uid != 1000 || st.Gid != 1001 {
				t.Fatalf("owner = %d:%d, %v", st.Uid, st.Gid, err)
			}
		}},
		{"xattr", func(t *testing.T, root string) {
			buf := make([]byte, 64)
			n, err := unix.Lgetxattr(filepath.Join(root, "etc/conf"), "user.note", buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Skipf("user xattrs unsupported here or lost: %q, %v", buf[:n], err)
			}
		}},
		{"directory mtime", func(t *testing.T, root string) {
			fi, err := os.Stat(filepath.Join(root, "stamped"))
			if err != nil || !fi.ModTime().Equal(mtime) {
				t.Fatalf("stamped mtime = %v, want %v (%v)", fi.ModTime(), mtime, err)
			}
		}},
		{"sticky dir", func(t *testing.T, root string) {
			fi, err := os.Stat(filepath.Join(root, "tmp"))
			if err != nil || fi.Mode()&fs.ModeSticky == 0 {
				t.Fatalf("tmp mode = %v, %v", fi.Mode(), err)
			}
		}},
		{"fifo", func(t *testing.T, root string) {
			fi, err := os.Lstat(filepath.Join(root, "run/pipe"))
			if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
				t.Fatalf("run/pipe mode = %v, %v", fi.Mode(), err)
			}
		}},
		{"absolute symlink kept", func(t *testing.T, root string) {
			if l, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || l != "/bin/busybox" {
				t.Fatalf("bin/sh -> %q, %v", l, err)
			}
		}},
		{"write through inner symlink", func(t *testing.T, root string) {
			if b, err := os.ReadFile(filepath.Join(root, "usr/lib/libc.so")); err != nil || string(b) != "elf" {
				t.Fatalf("usr/lib/libc.so = %q, %v", b, err)
			}
		}},
		{"hard link", func(t *testing.T, root string) {
			a, _ := os.Stat(filepath.Join(root, "bin/tool"))
			b, err := os.Stat(filepath.Join(root, "bin/tool2"))
			if err != nil || !os.SameFile(a, b) {
				t.Fatalf("bin/tool2 is not a hard link of bin/tool: %v", err)
			}
		}},
		{"whiteout device", func(t *testing.T, root string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, "gone/old"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Fatalf("gone/old is not a 0/0 char device: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
			}
			if _, err := os.Lstat(filepath.Join(root, "gone/.wh.old")); err == nil {
				t.Fatal("whiteout marker file was written as is")
			}
		}},
		{"opaque dir", func(t *testing.T, root string) {
			buf := make([]byte, 8)
			n, err := unix.Lgetxattr(filepath.Join(root, "opaque"), opaqueXattr, buf)
			if err != nil || string(buf[:n]) != "y" {
				t.Fatalf("opaque xattr = %q, %v", buf[:n], err)
			}
		}},
		{"later entry wins", func(t *testing.T, root string) {
			if b, _ := os.ReadFile(filepath.Join(root, "replaced")); string(b) != "two" {
				t.Fatalf("replaced = %q", b)
			}
		}},
	}
	for _, comp := range []string{"plain", "gzip", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			data := compress(t, comp, layer)
			rc, err := Decompress(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			root := t.TempDir()
			size, err := Apply(root, rc, ApplyOptions{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if size == 0 {
				t.Fatal("Apply reported no bytes written")
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.check(t, root) })
			}
		})
	}
}

func TestApplyDevicesWhenAllowed(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	layer := makeTar(t, dir("dev/"), entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1})
	// major 1 minor 0 is /dev/mem's major with minor 0: any device will do.
	if _, err := Apply(root, bytes.NewReader(layer), ApplyOptions{AllowDevices: true}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 {
		t.Fatalf("dev/null: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
	}
}

func compress(t testing.TB, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
	default:
		return data
	}
	return buf.Bytes()
}

func TestCleanEntryPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"a/b", "a/b", false},
		{"./a/./b/", "a/b", false},
		{"/abs/x", "abs/x", false},
		{"a/../b", "b", false},
		{".", "", false},
		{"..", "", true},
		{"a/../../b", "", true},
		{"/../x", "", true},
		{"a\x00b", "", true},
	}
	for _, tt := range tests {
		got, err := CleanEntryPath(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("CleanEntryPath(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		head []byte
		want Compression
		err  bool
	}{
		{[]byte{0x1f, 0x8b, 8}, Gzip, false},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, Zstd, false},
		{[]byte("BZh91AY"), Uncompressed, true},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, Uncompressed, true},
		{[]byte("etc/passwd"), Uncompressed, false},
		{nil, Uncompressed, false},
	}
	for _, tt := range tests {
		got, err := DetectCompression(tt.head)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("DetectCompression(%x) = %v, %v", tt.head, got, err)
		}
	}
}

// FuzzApply feeds arbitrary bytes to the decompressor and extractor and
// checks that nothing outside the target changes.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root: the extractor chowns entries and makes whiteout devices")
	}
	f.Add(makeTar(f, file("a", "x"), symlink("l", "../sentinel"), file("l/x", "y")))
	f.Add(makeTar(f, file("../sentinel/file", "x")))
	f.Add(makeTar(f, dir("d/"), file("d/.wh..wh..opq", ""), file(".wh.d", ""), hardlink("h", "a")))
	f.Add(compress(f, "gzip", makeTar(f, file("z", "gz"))))
	f.Add(compress(f, "zstd", makeTar(f, file("z", "zstd"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		target, sentinel := sandbox(t)
		before := fsState(t, sentinel)
		if rc, err := Decompress(bytes.NewReader(data)); err == nil {
			Apply(target, rc, ApplyOptions{})
			rc.Close()
		}
		if after := fsState(t, sentinel); after != before {
			t.Fatalf("sentinel changed:\n%s\n---\n%s", before, after)
		}
		parent, _ := os.ReadDir(filepath.Dir(target))
		if len(parent) != 2 {
			t.Fatalf("something was created beside the target: %v", parent)
		}
	})
}

// FuzzCleanEntryPath checks that a cleaned name never climbs out.
func FuzzCleanEntryPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/abs", "./.././"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanEntryPath(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(got, "/") || got == ".." || strings.HasPrefix(got, "../") || strings.Contains(got, "/../") {
			t.Fatalf("CleanEntryPath(%q) = %q climbs out", name, got)
		}
	})
}
