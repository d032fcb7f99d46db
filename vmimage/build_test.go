package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestBuildReproducible builds the amd64 image twice from the same inputs
// and expects the same digests, byte for byte.
func TestBuildReproducible(t *testing.T) {
	requireBuildTools(t)
	first := buildImage(t, "amd64")
	root := repoRoot(t)
	second := filepath.Join(t.TempDir(), "b")
	m2, err := Build(context.Background(), Config{Arch: "amd64", RepoRoot: root, OutDir: second,
		CacheDir: filepath.Join(root, "build", "vm", "cache"), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vmlinuz", "initrd.img", "manifest.json"} {
		a, err := os.ReadFile(filepath.Join(first, "amd64", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(second, "amd64", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same inputs", name)
		}
	}
	// The manifest names what it was built from and what it made.
	if len(m2.Packages) < 3 || m2.KernelRelease == "" || len(m2.Outputs) != 2 {
		t.Fatalf("manifest = %+v", m2)
	}
	for _, o := range m2.Outputs {
		sum, err := fileSHA256(filepath.Join(second, "amd64", o.Name))
		if err != nil {
			t.Fatal(err)
		}
		if sum != o.SHA256 {
			t.Errorf("manifest digest of %s = %s, file has %s", o.Name, o.SHA256, sum)
		}
	}
	if !strings.HasSuffix(m2.Modules[0], "/virtio_ring.ko") {
		t.Errorf("first module = %s, want virtio_pci's dependency virtio_ring", m2.Modules[0])
	}

	// The initrd reads back: root 0755, /dev/console, /init, sorted, mtime 0.
	data, err := os.ReadFile(filepath.Join(second, "amd64", "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	got := map[string]CpioHeader{}
	err = ReadCpio(bytes.NewReader(data), func(h CpioHeader, _ []byte) error {
		names = append(names, h.Name)
		got[h.Name] = h
		if h.MTime != 0 {
			t.Errorf("%s: mtime %d", h.Name, h.MTime)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sortedStrings(names) {
		t.Error("initrd entries are not sorted")
	}
	checks := map[string]uint32{".": modeDir | 0o755, "dev/console": modeCharDev | 0o600, "init": modeFile | 0o755,
		"berth-agent": modeFile | 0o755, "sbin/mke2fs": modeFile | 0o755, "sbin/resize2fs": modeFile | 0o755,
		"etc/mke2fs.conf": modeFile | 0o644, "etc/berth/modules.load": modeFile | 0o644}
	for name, mode := range checks {
		if h, ok := got[name]; !ok || h.Mode != mode {
			t.Errorf("%s: mode %o present %v, want %o", name, h.Mode, ok, mode)
		}
	}
	if h := got["dev/console"]; h.DevMajor != 5 || h.DevMinor != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", h.DevMajor, h.DevMinor)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestArchiveRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := NewArchive()
	for _, e := range []Entry{
		{Path: "/b/c/file", Mode: modeFile | 0o640, Source: src},
		{Path: "a/link", Mode: modeSymlink | 0o777, Link: "../b/c/file"},
		{Path: "a/data", Mode: modeFile | 0o600, Data: []byte("xyz")},
		{Path: "dev/null", Mode: modeCharDev | 0o666, DevMajor: 1, DevMinor: 3},
	} {
		if err := a.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Add(Entry{Path: "../escape", Mode: modeFile}); err == nil {
		t.Error("an entry outside the root was accepted")
	}
	var buf bytes.Buffer
	if err := a.WriteTo(&buf, 42); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", buf.Len())
	}
	type ent struct {
		mode uint32
		data string
	}
	got := map[string]ent{}
	var order []string
	if err := ReadCpio(&buf, func(h CpioHeader, d []byte) error {
		got[h.Name] = ent{h.Mode, string(d)}
		order = append(order, h.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]ent{
		".":        {modeDir | 0o755, ""},
		"a":        {modeDir | 0o755, ""},
		"a/data":   {modeFile | 0o600, "xyz"},
		"a/link":   {modeSymlink | 0o777, "../b/c/file"},
		"b":        {modeDir | 0o755, ""},
		"b/c":      {modeDir | 0o755, ""},
		"b/c/file": {modeFile | 0o640, "hello"},
		"dev":      {modeDir | 0o755, ""},
		"dev/null": {modeCharDev | 0o666, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	if !sortedStrings(order) {
		t.Errorf("order %v is not sorted", order)
	}
}

func FuzzReadCpio(f *testing.F) {
	a := NewArchive()
	a.Add(Entry{Path: "x/y", Mode: modeFile | 0o644, Data: []byte("data")})
	var buf bytes.Buffer
	a.WriteTo(&buf, 0)
	f.Add(buf.Bytes())
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ReadCpio(bytes.NewReader(b), func(CpioHeader, []byte) error { return nil })
	})
}

func TestParseShowDepends(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
		wantErr    bool
	}{
		{"deps in order", "insmod /r/lib/modules/k/a.ko \ninsmod /r/lib/modules/k/b.ko opt=1\n",
			[]string{"lib/modules/k/a.ko", "lib/modules/k/b.ko"}, false},
		{"builtin skipped", "builtin ext4\n", nil, false},
		{"compressed refused", "insmod /r/lib/modules/k/a.ko.xz\n", nil, true},
		{"outside root", "insmod /other/a.ko\n", nil, true},
		{"escape", "insmod /r/../etc/a.ko\n", nil, true},
		{"garbage", "hello\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseShowDepends(tt.text, "/r")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseShowDepends(f *testing.F) {
	f.Add("insmod /r/lib/modules/k/a.ko \nbuiltin x\n")
	f.Fuzz(func(t *testing.T, text string) {
		paths, err := ParseShowDepends(text, "/r")
		if err != nil {
			return
		}
		for _, p := range paths {
			if strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") || !strings.HasSuffix(p, ".ko") {
				t.Fatalf("unsafe module path %q", p)
			}
		}
	})
}

func TestKernelDependency(t *testing.T) {
	tests := []struct {
		depends, want string
		wantErr       bool
	}{
		{"linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-cloud-amd64", false},
		{"foo, linux-image-6.1.0-56-cloud-arm64 (= 6.1.192-2)", "linux-image-6.1.0-56-cloud-arm64", false},
		{"linux-image-6.1.0-56-cloud-amd64-unsigned (= 1) | linux-image-x", "linux-image-6.1.0-56-cloud-amd64-unsigned", false},
		{"libc6", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := KernelDependency(tt.depends)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("KernelDependency(%q) = %q, %v", tt.depends, got, err)
		}
	}
}

func TestParseControl(t *testing.T) {
	c := ParseControl("Package: x\nVersion: 1:2.3-4\nDescription: one\n two\n\nPackage: y\nVersion: 9\n")
	if c["Package"] != "x" || c["Version"] != "1:2.3-4" || c["Description"] != "one\ntwo" {
		t.Errorf("got %v", c)
	}
	if got := debFileName("x", "1:2.3-4", "amd64"); got != "x_1%3a2.3-4_amd64.deb" {
		t.Errorf("debFileName = %q", got)
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add("Package: x\nVersion: 1\nDepends: a, b (>= 2)\n")
	f.Fuzz(func(t *testing.T, text string) {
		c := ParseControl(text)
		_, _ = KernelDependency(c["Depends"])
	})
}
