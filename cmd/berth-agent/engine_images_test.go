//go:build linux

package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tarNames lists the entries of a tar file.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		names = append(names, h.Name)
	}
}

// TestCommitSavePruneEvents drives docker commit, save, image prune and
// image events through the CLI.
func TestCommitSavePruneEvents(t *testing.T) {
	e := needEngine(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	mark := "it" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ref := "berth-it/committed:" + mark

	src := e.create(t, "--name", "commit-src-"+mark, testImage, "sh", "-c", "echo hi > /f")
	e.ok(t, "start", "-a", src)
	e.ok(t, "commit", "-c", `CMD ["cat", "/f"]`, "-m", "made here", src, ref)
	defer e.docker(nil, "rmi", "-f", ref)
	if out := e.ok(t, "run", "--rm", ref); out != "hi" {
		t.Errorf("run of the committed image printed %q, want hi", out)
	}
	if out := e.ok(t, "image", "inspect", "-f", "{{json .Config.Cmd}}", ref); out != `["cat","/f"]` {
		t.Errorf("committed Cmd %s", out)
	}

	// docker save, then load it back after removing it.
	tarPath := filepath.Join(t.TempDir(), "saved.tar")
	e.ok(t, "save", "-o", tarPath, ref)
	names := strings.Join(tarNames(t, tarPath), " ")
	for _, want := range []string{"manifest.json", "index.json", "oci-layout"} {
		if !strings.Contains(names, want) {
			t.Errorf("saved archive lacks %s: %s", want, names)
		}
	}
	e.ok(t, "rmi", ref)
	e.ok(t, "load", "-i", tarPath)
	if out := e.ok(t, "run", "--rm", ref); out != "hi" {
		t.Errorf("run of the reloaded image printed %q, want hi", out)
	}

	// An unnamed commit is dangling; prune (limited to its label) removes it.
	id := e.ok(t, "commit", "-c", "LABEL prunemark="+mark, src)
	out := e.ok(t, "image", "prune", "-f", "--filter", "label=prunemark="+mark)
	if !strings.Contains(out, strings.TrimPrefix(id, "sha256:")) {
		t.Errorf("prune output does not name %s:\n%s", id, out)
	}
	if code, r := e.code("image", "inspect", id); code == 0 {
		t.Errorf("%s survived prune: %v", id, r)
	}

	// Image events: tag, and the container's commit.
	e.ok(t, "tag", testImage, "berth-it/evtag:"+mark)
	defer e.docker(nil, "rmi", "berth-it/evtag:"+mark)
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	evs := e.ok(t, "events", "--since", since, "--until", until, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	for _, want := range []string{"image tag berth-it/evtag:" + mark, "container commit commit-src-" + mark, "image load", "image delete"} {
		if !strings.Contains(evs, want) {
			t.Errorf("events lack %q:\n%s", want, evs)
		}
	}
}

// TestCreatePlatformMismatch: --platform naming another architecture than
// the image's is refused as dockerd does, so the CLI tries a pull.
func TestCreatePlatformMismatch(t *testing.T) {
	e := needEngine(t)
	other := "arm64"
	if goruntime.GOARCH == "arm64" {
		other = "amd64"
	}
	code, r := e.code("create", "--platform", "linux/"+other, testImage, "true")
	if code == 0 {
		e.docker(nil, "rm", "-f", strings.TrimSpace(r.stdout))
		t.Fatalf("create of a %s image as linux/%s succeeded: %v", goruntime.GOARCH, other, r)
	}
	if !strings.Contains(r.stderr, "Unable to find image") {
		t.Errorf("the CLI did not treat the refusal as a missing image: %v", r)
	}
	e.ok(t, "rm", e.ok(t, "create", "--platform", "linux/"+goruntime.GOARCH, testImage, "true"))
}
