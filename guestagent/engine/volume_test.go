//go:build linux

package engine

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/hostshare"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestPlanMountsSharedPaths(t *testing.T) {
	e, _, _ := newTestEngine(t, t.TempDir())
	shared := t.TempDir()
	var err error
	if e.cfg.Shares, err = hostshare.NewPolicy([]string{shared}); err != nil {
		t.Fatal(err)
	}
	hc := &container.HostConfig{Binds: []string{shared + "/sub:/in"}}
	if _, err := e.planMounts(hc, &container.Config{}); err != nil {
		t.Errorf("bind inside the shared path: %v", err)
	}
	hc = &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/etc", Target: "/x"}}}
	_, err = e.planMounts(hc, &container.Config{})
	var de *hostshare.DeniedError
	if !errors.As(err, &de) || de.Path != "/etc" {
		t.Errorf("bind outside the shared paths: %v", err)
	}
}

func TestPlanMountsAnonymousAndOverrides(t *testing.T) {
	e, _, _ := newTestEngine(t, t.TempDir())
	hc := &container.HostConfig{Binds: []string{"named:/data"}, Tmpfs: map[string]string{"/t": ""}}
	cfg := &container.Config{Volumes: map[string]struct{}{"/data": {}, "/t": {}, "/cache/": {}}}
	mps, err := e.planMounts(hc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) != 2 {
		t.Fatalf("mounts %+v", mps)
	}
	if mps[0].Name != "named" || mps[0].Mode != "z" || mps[1].Destination != "/cache" || len(mps[1].Name) != 64 || !isHex(mps[1].Name) {
		t.Errorf("mounts %+v", mps)
	}
	if _, err := e.planMounts(&container.HostConfig{Binds: []string{"ab:/x", "/h:/x"}}, &container.Config{}); err == nil || !strings.Contains(err.Error(), "Duplicate mount point: /x") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := e.planMounts(&container.HostConfig{VolumesFrom: []string{"nope"}}, &container.Config{}); !isNotFound(err) {
		t.Errorf("volumes-from a missing container: %v", err)
	}
}

func TestTmpfsMode(t *testing.T) {
	if got := tmpfsMode(0o1770); got != 0o1770 {
		t.Errorf("raw bits: %o", got)
	}
	if got := tmpfsMode(os.ModeSticky | 0o770); got != 0o1770 {
		t.Errorf("Go flags: %o", got)
	}
}

func TestResolveScoped(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("/etc", filepath.Join(root, "a/abs"))
	os.Symlink("../../../../etc", filepath.Join(root, "a/rel"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	tests := []struct {
		in, want string
		follow   bool
	}{
		{"/a/b", "a/b", false},
		{"/a/abs/passwd", "etc/passwd", false},
		{"/a/rel/x", "etc/x", false},
		{"/a/abs", "a/abs", false},
		{"/a/abs", "etc", true},
		{"/../../a/../etc", "etc", false},
		{"/missing/../x", "x", false},
	}
	for _, tt := range tests {
		got, err := resolveScoped(root, tt.in, tt.follow)
		if err != nil || got != tt.want {
			t.Errorf("resolveScoped(%q, %v) = %q, %v; want %q", tt.in, tt.follow, got, err, tt.want)
		}
	}
	if _, err := resolveScoped(root, "/loop/x", false); !errors.Is(err, errLoop) {
		t.Errorf("loop: %v", err)
	}
}

func FuzzResolveScoped(f *testing.F) {
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "d"), 0o755)
	os.Symlink("/", filepath.Join(root, "d/up"))
	os.Symlink("../../..", filepath.Join(root, "d/rel"))
	f.Add("/d/up/d/rel/x")
	f.Add("../../etc/passwd")
	f.Fuzz(func(t *testing.T, p string) {
		got, err := resolveScoped(root, p, true)
		if err != nil {
			return
		}
		for _, c := range strings.Split(got, "/") {
			if c == ".." || (c == "" && got != "") || c == "." {
				t.Fatalf("resolveScoped(%q) = %q", p, got)
			}
		}
	})
}

// extractInto runs extractTar on a fresh directory inside a parent that
// must stay untouched.
func extractInto(t *testing.T, data []byte) (parent string, err error) {
	parent, err = os.MkdirTemp("", "extract-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	dst := filepath.Join(parent, "root")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	return parent, extractTar(root, bytes.NewReader(data), api.ExtractOptions{CopyUIDGID: true})
}

func onlyRoot(t *testing.T, parent string) {
	t.Helper()
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 || ents[0].Name() != "root" {
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		t.Fatalf("extraction wrote outside its root: %v", n)
	}
}

func TestExtractTarRefusesEscapes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("extraction sets owners, which needs root")
	}
	mk := func(hs ...tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			tw.WriteHeader(&h)
		}
		tw.Close()
		return buf.Bytes()
	}
	for name, data := range map[string][]byte{
		"dotdot":   mk(tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}),
		"symlink":  mk(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: ".."}, tar.Header{Name: "l/escape", Typeflag: tar.TypeReg, Mode: 0o644}),
		"abs link": mk(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, tar.Header{Name: "l/escape", Typeflag: tar.TypeDir, Mode: 0o755}),
		"hardlink": mk(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"}),
	} {
		parent, err := extractInto(t, data)
		if err == nil {
			t.Errorf("%s: escaping archive accepted", name)
		}
		onlyRoot(t, parent)
	}
	// A good archive keeps modes, owners and symlinks.
	parent, err := extractInto(t, mk(
		tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o710, Uid: 7, Gid: 8},
		tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o4751},
		tar.Header{Name: "d/s", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(parent, "root/d"))
	if err != nil || fi.Mode().Perm() != 0o710 {
		t.Errorf("dir %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(parent, "root/d/f")); err != nil || fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o751 {
		t.Errorf("file %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(parent, "root/d/s")); err != nil || l != "/etc/passwd" {
		t.Errorf("symlink %q %v", l, err)
	}
}

func FuzzExtractTar(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("extraction sets owners, which needs root")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../.."})
	tw.WriteHeader(&tar.Header{Name: "l/x", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		parent, _ := extractInto(t, data)
		onlyRoot(t, parent)
	})
}
