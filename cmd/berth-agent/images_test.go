//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/internal/testimage"
	"github.com/moby/moby/api/types/image"
)

// imageInspect returns the image's inspect document.
func (e *engine) imageInspect(t *testing.T, ref string) image.InspectResponse {
	t.Helper()
	out := e.ok(t, "image", "inspect", ref)
	var docs []image.InspectResponse
	if err := json.Unmarshal([]byte(out), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("decode image inspect of %s: %v\n%s", ref, err, out)
	}
	return docs[0]
}

// imagesEntry is one line of `docker images --format '{{json .}}'`.
type imagesEntry struct {
	ID         string
	Repository string
	Tag        string
}

func (e *engine) images(t *testing.T, args ...string) []imagesEntry {
	t.Helper()
	out := e.ok(t, append([]string{"images", "--no-trunc", "--format", "{{json .}}"}, args...)...)
	var list []imagesEntry
	for _, line := range nonEmptyLines(out) {
		var m imagesEntry
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("decode images line %q: %v", line, err)
		}
		list = append(list, m)
	}
	return list
}

// TestImageLoadInspect checks the image docker load gave the shared engine.
func TestImageLoadInspect(t *testing.T) {
	e := needEngine(t)
	doc := e.imageInspect(t, testImage)
	if doc.ID != img.ID {
		t.Errorf("Id %s, want %s", doc.ID, img.ID)
	}
	if !containsString(doc.RepoTags, testImage) {
		t.Errorf("RepoTags %v lack %s", doc.RepoTags, testImage)
	}
	if doc.RootFS.Type != "layers" || len(doc.RootFS.Layers) != 1 || doc.RootFS.Layers[0] != img.DiffID {
		t.Errorf("RootFS %+v, want one layer %s", doc.RootFS, img.DiffID)
	}
	if doc.Config == nil || strings.Join(doc.Config.Cmd, " ") != "sh" {
		t.Errorf("Config %+v, want Cmd sh", doc.Config)
	}
	if doc.Os != "linux" || doc.Size <= 0 {
		t.Errorf("Os %q Size %d", doc.Os, doc.Size)
	}
	// By short ID and by full ID.
	for _, ref := range []string{strings.TrimPrefix(img.ID, "sha256:")[:12], img.ID} {
		if got := e.imageInspect(t, ref); got.ID != img.ID {
			t.Errorf("inspect %s: Id %s", ref, got.ID)
		}
	}
	found := false
	for _, m := range e.images(t) {
		if m.Repository == "berth-test/busybox" && m.Tag == "latest" {
			found = true
			if m.ID != img.ID {
				t.Errorf("docker images: ID %s, want %s", m.ID, img.ID)
			}
		}
	}
	if !found {
		t.Errorf("docker images lacks berth-test/busybox:latest: %+v", e.images(t))
	}
	if code, r := e.code("image", "inspect", "berth-test/no-such:v0"); code == 0 {
		t.Errorf("inspect of a missing image succeeded\n%v", r)
	}
}

// TestImageLoadOCILayout loads an OCI image layout tarball.
func TestImageLoadOCILayout(t *testing.T) {
	e := needEngine(t)
	oci, err := testimage.Build(testimage.Options{Tag: "berth-test/oci:v1", Cmd: []string{"echo", "from-oci"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := oci.WriteOCILayout(&buf); err != nil {
		t.Fatal(err)
	}
	r := e.docker(&buf, "load")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	t.Cleanup(func() { e.docker(nil, "rmi", "-f", oci.ID) })
	doc := e.imageInspect(t, oci.ID)
	if len(doc.RootFS.Layers) != 1 || doc.RootFS.Layers[0] != oci.DiffID {
		t.Errorf("RootFS %+v", doc.RootFS)
	}
	// An OCI layout names its image by the ref.name annotation (v1) or
	// the containerd name annotation (berth-test/oci:v1); either is
	// docker's behaviour depending on version, so run it by ID.
	if got := e.ok(t, "run", "--rm", oci.ID); got != "from-oci" {
		t.Errorf("run the OCI image: %q", got)
	}
}

// TestImageTagRmi checks tag and rmi, including refusal while in use.
func TestImageTagRmi(t *testing.T) {
	e := needEngine(t)
	e.ok(t, "tag", testImage, "berth-test/other:v2")
	if doc := e.imageInspect(t, "berth-test/other:v2"); doc.ID != img.ID {
		t.Errorf("tagged image Id %s, want %s", doc.ID, img.ID)
	}
	if doc := e.imageInspect(t, testImage); !containsString(doc.RepoTags, "berth-test/other:v2") {
		t.Errorf("RepoTags after tag: %v", doc.RepoTags)
	}
	e.ok(t, "rmi", "berth-test/other:v2")
	if code, r := e.code("image", "inspect", "berth-test/other:v2"); code == 0 {
		t.Errorf("the removed tag still resolves\n%v", r)
	}
	if doc := e.imageInspect(t, testImage); doc.ID != img.ID {
		t.Errorf("untagging removed the image")
	}
	if code, r := e.code("rmi", "berth-test/no-such:v0"); code == 0 {
		t.Errorf("rmi of a missing image succeeded\n%v", r)
	}

	// An image a container uses cannot be removed without -f.
	e.ok(t, "tag", testImage, "berth-test/inuse:v1")
	other, err := testimage.Build(testimage.Options{Tag: "berth-test/inuse2:v1", Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := other.WriteDockerSave(&buf); err != nil {
		t.Fatal(err)
	}
	if r := e.docker(&buf, "load"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	id := e.create(t, "berth-test/inuse2:v1")
	if code, r := e.code("rmi", other.ID); code == 0 {
		t.Errorf("rmi of an image in use by %s succeeded\n%v", id, r)
	}
	e.ok(t, "rm", id)
	e.ok(t, "rmi", "berth-test/inuse2:v1")
	if code, r := e.code("image", "inspect", other.ID); code == 0 {
		t.Errorf("image still present after rmi of its last tag\n%v", r)
	}
	e.ok(t, "rmi", "berth-test/inuse:v1")
}

// TestImageImport checks docker import from stdin and from a file, with
// -c changes.
func TestImageImport(t *testing.T) {
	e := needEngine(t)
	var rootfs bytes.Buffer
	if err := testimage.WriteRootfs(&rootfs, testimage.Options{Files: map[string]string{"/marker": "imported\n"}}); err != nil {
		t.Fatal(err)
	}
	t.Run("stdin with changes", func(t *testing.T) {
		r := e.docker(bytes.NewReader(rootfs.Bytes()), "import",
			"-c", `CMD ["cat", "/marker"]`, "-c", "ENV FOO=bar", "-c", "WORKDIR /tmp", "-c", "LABEL origin=import",
			"-", "berth-test/imported:v1")
		if r.code != 0 {
			t.Fatalf("%v", r)
		}
		t.Cleanup(func() { e.docker(nil, "rmi", "-f", "berth-test/imported:v1") })
		id := strings.TrimSpace(r.stdout)
		doc := e.imageInspect(t, "berth-test/imported:v1")
		if doc.ID != id {
			t.Errorf("import printed %q, inspect says %s", id, doc.ID)
		}
		if doc.Config == nil {
			t.Fatal("no Config")
		}
		if strings.Join(doc.Config.Cmd, " ") != "cat /marker" || !containsString(doc.Config.Env, "FOO=bar") ||
			doc.Config.WorkingDir != "/tmp" || doc.Config.Labels["origin"] != "import" {
			t.Errorf("Config after -c: %+v", doc.Config)
		}
		if got := e.ok(t, "run", "--rm", "berth-test/imported:v1"); got != "imported" {
			t.Errorf("run the imported image: %q", got)
		}
		if got := e.ok(t, "run", "--rm", "berth-test/imported:v1", "sh", "-c", "echo $FOO; pwd"); got != "bar\n/tmp" {
			t.Errorf("env and workdir of the imported image: %q", got)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rootfs.tar")
		if err := os.WriteFile(path, rootfs.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		e.ok(t, "import", path, "berth-test/imported:file")
		t.Cleanup(func() { e.docker(nil, "rmi", "-f", "berth-test/imported:file") })
		if got := e.ok(t, "run", "--rm", "berth-test/imported:file", "cat", "/marker"); got != "imported" {
			t.Errorf("run the imported image: %q", got)
		}
	})
}
