//go:build linux

package image

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/berthdesktop/berth/internal/testimage"
)

// TestLoadTestImages loads the archives the rest of the project's tests
// use, in both forms, and checks the image IDs they promise.
func TestLoadTestImages(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skipf("needs Debian's busybox-static: %v", err)
	}
	img, err := testimage.Build(testimage.Options{Tag: "berth-test/busybox:v1"})
	if err != nil {
		t.Fatal(err)
	}
	forms := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"docker save", func(b *bytes.Buffer) error { return img.WriteDockerSave(b) }},
		{"OCI layout", func(b *bytes.Buffer) error { return img.WriteOCILayout(b) }},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := f.write(&buf); err != nil {
				t.Fatal(err)
			}
			s := openStore(t)
			got := load(t, s, buf.Bytes(), false)
			if !slices.Equal(got, []string{"Loaded image: berth-test/busybox:v1\n"}) {
				t.Fatalf("load output = %q", got)
			}
			insp, err := s.ImageInspect(context.Background(), "berth-test/busybox:v1")
			if err != nil {
				t.Fatal(err)
			}
			if insp.ID != img.ID || !slices.Equal(insp.RootFS.Layers, []string{img.DiffID}) {
				t.Fatalf("loaded %s %v, want %s %s", insp.ID, insp.RootFS.Layers, img.ID, img.DiffID)
			}
			ms, err := s.PrepareRootfs("c", mustDigest(t, insp.ID))
			if err != nil {
				t.Fatal(err)
			}
			root := mountRootfs(t, ms)
			out, err := chrootRun(root, "/bin/sh", "-c", "cat /etc/passwd")
			if err != nil || string(out) != testimage.Passwd {
				t.Fatalf("/etc/passwd in rootfs = %q, %v", out, err)
			}
		})
	}
}
