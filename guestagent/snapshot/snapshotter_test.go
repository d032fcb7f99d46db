//go:build linux

package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func chainOf(parent digest.Digest, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

func commit(t *testing.T, s *Snapshotter, parent digest.Digest, layer []byte) digest.Digest {
	t.Helper()
	id := chainOf(parent, digest.FromBytes(layer))
	if _, err := s.ApplyLayer(id, parent, bytes.NewReader(layer), ApplyOptions{}, nil); err != nil {
		t.Fatalf("ApplyLayer: %v", err)
	}
	return id
}

func TestOverlayMount(t *testing.T) {
	requireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := commit(t, s, "", makeTar(t, file("a", "from base"), file("b", "doomed"), dir("d/"), file("d/x", "hidden"), file("keep/k", "k")))
	top := commit(t, s, base, makeTar(t, file(".wh.b", ""), dir("d/"), file("d/.wh..wh..opq", ""), file("d/y", "new"), file("a", "from top")))
	mounts, err := s.Prepare("ctr1", top)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		t.Fatalf("mounts = %+v", mounts)
	}
	target := t.TempDir()
	if err := unix.Mount(mounts[0].Source, target, mounts[0].Type, 0, strings.Join(mounts[0].Options, ",")); err != nil {
		t.Fatalf("mount overlay %v: %v", mounts[0].Options, err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)

	tests := []struct {
		path string
		want string // "" means absent
	}{
		{"a", "from top"},
		{"b", ""},
		{"d/x", ""},
		{"d/y", "new"},
		{"keep/k", "k"},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join(target, tt.path))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s is visible (%q), want it whited out", tt.path, b)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.path, b, err, tt.want)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "written"), bytes.Repeat([]byte("w"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	rw, lower, err := s.Usage("ctr1")
	if err != nil {
		t.Fatal(err)
	}
	if rw != 1000 || lower == 0 {
		t.Fatalf("Usage = %d, %d; want 1000 and the layers' size", rw, lower)
	}
	again, err := s.Mounts("ctr1")
	if err != nil || strings.Join(again[0].Options, ",") != strings.Join(mounts[0].Options, ",") {
		t.Fatalf("Mounts = %+v, %v; want %+v", again, err, mounts)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare("ctr1", top); err == nil {
		t.Fatal("Prepare of an existing key succeeded")
	}
	if err := s.Remove("ctr1"); err != nil {
		t.Fatal(err)
	}
	var nf interface{ NotFound() }
	if _, err := s.Mounts("ctr1"); !errors.As(err, &nf) {
		t.Fatalf("Mounts after Remove = %v, want NotFound", err)
	}
	if err := s.RemoveLayer(top); err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(top) || !s.HasLayer(base) {
		t.Fatal("RemoveLayer removed the wrong layer")
	}
}

func TestApplyLayerVerifyVeto(t *testing.T) {
	requireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layer := makeTar(t, file("a", "x"))
	id := digest.FromBytes(layer)
	veto := errors.New("diff ID mismatch")
	if _, err := s.ApplyLayer(id, "", bytes.NewReader(layer), ApplyOptions{}, func() error { return veto }); !errors.Is(err, veto) {
		t.Fatalf("ApplyLayer = %v, want the veto", err)
	}
	if s.HasLayer(id) {
		t.Fatal("vetoed layer is visible")
	}
	bad := makeTar(t, file("../escape", "x"))
	if _, err := s.ApplyLayer(digest.FromBytes(bad), "", bytes.NewReader(bad), ApplyOptions{}, nil); err == nil {
		t.Fatal("hostile layer was committed")
	}
	if _, err := s.ApplyLayer(chainOf(id, id), id, bytes.NewReader(layer), ApplyOptions{}, nil); err == nil {
		t.Fatal("layer on a missing parent was committed")
	}
	left, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	layers, _ := s.Layers()
	if len(left) != 0 || len(layers) != 0 {
		t.Fatalf("left behind: tmp %v, layers %v", left, layers)
	}
}

func TestOpenDropsUnfinishedWork(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// A crash mid-apply leaves a temp dir and maybe a dangling link.
	os.MkdirAll(filepath.Join(root, "tmp", "layer-123", "fs"), 0o755)
	os.Symlink("../layers/nothere/fs", filepath.Join(root, "l", "DANGLING"))
	id := commit(t, s, "", makeTar(t, file("a", "x")))
	// A crash may also lose a layer's link.
	info, _ := s.Layer(id)
	os.Remove(filepath.Join(root, "l", info.Link))
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "l", info.Link, "a")); err != nil {
		t.Fatalf("lost link not restored: %v", err)
	}
	// And a container layer's link.
	s2, _ := Open(root)
	if _, err := s2.Prepare("ctr", id); err != nil {
		t.Fatal(err)
	}
	m, _ := s2.container("ctr")
	os.Remove(filepath.Join(root, "l", m.Link))
	s3, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s3.Mounts("ctr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "l", m.Link, "upper")); err != nil || !strings.Contains(strings.Join(ms[0].Options, ","), "l/"+m.Link+"/upper") {
		t.Fatalf("container link not restored: %v, %v", err, ms)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Fatalf("tmp not cleared: %v", left)
	}
	if _, err := os.Lstat(filepath.Join(root, "l", "DANGLING")); err == nil {
		t.Fatal("dangling link kept")
	}
	if !s.HasLayer(id) {
		t.Fatal("committed layer lost")
	}
}

func TestMountDataFitsForDeepImages(t *testing.T) {
	requireRoot(t)
	// The engine's store in the VM lives at /var/lib/berth/image/ov: a
	// root of 23 characters must take dockerd's maximum of 125 layers.
	root := fmt.Sprintf("/tmp/berth-deep-%07x", time.Now().UnixNano()&0xfffffff)
	if len(root) != 23 {
		t.Fatalf("test root %q is not 23 characters", root)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var parent digest.Digest
	const depth = 125
	for i := range depth {
		parent = commit(t, s, parent, makeTar(t, file(fmt.Sprintf("f%d", i), "x")))
	}
	key := strings.Repeat("c", 64) // a container ID
	mounts, err := s.Prepare(key, parent)
	if err != nil {
		t.Fatalf("Prepare of a %d-layer image: %v", depth, err)
	}
	data := strings.Join(mounts[0].Options, ",")
	if len(data) > maxMountData {
		t.Fatalf("mount data is %d bytes", len(data))
	}
	target := t.TempDir()
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		t.Fatalf("mount %d layers: %v", depth, err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	for _, f := range []string{"f0", "f124"} {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "w"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Unmount(target, 0)
	if _, err := os.Stat(filepath.Join(root, "containers", key, "upper", "w")); err != nil {
		t.Fatalf("write did not land in the container's upper directory: %v", err)
	}
	if err := s.Remove(key); err != nil {
		t.Fatal(err)
	}
	links, _ := os.ReadDir(filepath.Join(root, "l"))
	if len(links) != depth {
		t.Fatalf("%d links left, want one per layer (%d)", len(links), depth)
	}
}

func TestInvalidKeys(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "../x", "a/b", "..", ".hidden", strings.Repeat("k", 200)} {
		if _, err := s.Prepare(key, ""); err == nil {
			t.Errorf("Prepare(%q) succeeded", key)
		}
	}
	if _, err := s.Layer("sha256:../../x"); err == nil {
		t.Error("Layer with a bad chain ID succeeded")
	}
}
