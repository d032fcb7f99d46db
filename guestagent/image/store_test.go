//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: layers are extracted with their owners and whiteout devices, rootfs is mounted with overlayfs")
	}
}

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// messages decodes a JSON-message stream.
func messages(t testing.TB, b []byte) []jsonstream.Message {
	t.Helper()
	var out []jsonstream.Message
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("bad message stream %q: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

func load(t testing.TB, s *Store, archive []byte, quiet bool) []string {
	t.Helper()
	var out bytes.Buffer
	if err := s.ImageLoad(context.Background(), bytes.NewReader(archive), quiet, &out); err != nil {
		t.Fatalf("ImageLoad: %v", err)
	}
	var lines []string
	for _, m := range messages(t, out.Bytes()) {
		lines = append(lines, m.Stream)
	}
	return lines
}

var (
	extraLayer = func(t testing.TB) []byte {
		return tarOf(t, tfile{name: "etc/", dir: true}, tfile{name: "etc/motd", body: "second image\n"}, tfile{name: "etc/.wh.passwd"})
	}
)

// mountRootfs mounts a container rootfs and returns where.
func mountRootfs(t *testing.T, ms []Mount) string {
	t.Helper()
	if len(ms) != 1 || ms[0].Type != "overlay" {
		t.Fatalf("mounts = %+v", ms)
	}
	target := t.TempDir()
	if err := unix.Mount(ms[0].Source, target, ms[0].Type, 0, strings.Join(ms[0].Options, ",")); err != nil {
		t.Fatalf("mount rootfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	return target
}

func TestLoadDockerSaveAndRun(t *testing.T) {
	requireRoot(t)
	bb := busyboxLayer(t)
	busybox := testImage{tags: []string{"busybox:latest"}, layers: [][]byte{bb}}
	busybox.config.Cmd = []string{"sh"}
	second := testImage{tags: []string{"example.com/team/second:v1", "second:latest"}, layers: [][]byte{bb, extraLayer(t)}}
	second.config.Env = []string{"PATH=/bin"}
	archive := legacySave(t, busybox, second)

	s := openStore(t)
	got := load(t, s, archive, false)
	want := []string{"Loaded image: busybox:latest\n", "Loaded image: example.com/team/second:v1\n", "Loaded image: second:latest\n"}
	if !slices.Equal(got, want) {
		t.Fatalf("load output = %q, want %q", got, want)
	}
	layers, _ := s.snap.Layers()
	if len(layers) != 2 {
		t.Fatalf("%d layers committed, want 2 (the busybox layer is shared)", len(layers))
	}

	for _, name := range []string{"busybox", fullName(t, "busybox"), "library/busybox", "busybox:latest", "second", "example.com/team/second:v1"} {
		if _, err := s.Resolve(name); err != nil {
			t.Errorf("Resolve(%q): %v", name, err)
		}
	}
	img, err := s.Resolve("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.Config.Config.Cmd, []string{"sh"}) || !slices.Equal(img.RepoTags, []string{"busybox:latest"}) {
		t.Fatalf("busybox image = %+v", img)
	}
	for _, byID := range []string{img.ID.String(), img.ID.Encoded(), img.ID.Encoded()[:12], "sha256:" + img.ID.Encoded()[:12]} {
		if got, err := s.Resolve(byID); err != nil || got.ID != img.ID {
			t.Errorf("Resolve(%q) = %v, %v", byID, got, err)
		}
	}

	sec, _ := s.Resolve("second")
	ms, err := s.PrepareRootfs("c1", sec.ID)
	if err != nil {
		t.Fatal(err)
	}
	root := mountRootfs(t, ms)
	checks := []struct {
		path string
		want string // "" = absent
	}{
		{"etc/motd", "second image\n"},
		{"etc/passwd", ""},
	}
	for _, c := range checks {
		b, err := os.ReadFile(filepath.Join(root, c.path))
		if c.want == "" && err == nil {
			t.Errorf("%s visible, want whited out", c.path)
		}
		if c.want != "" && string(b) != c.want {
			t.Errorf("%s = %q, %v", c.path, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || l != "busybox" {
		t.Fatalf("bin/sh -> %q, %v", l, err)
	}
	// Run the image's busybox through the mounted rootfs.
	out, err := chrootRun(root, "/bin/sh", "-c", "echo hello from $(basename $0) && cat /etc/motd")
	if err != nil {
		t.Fatalf("run in rootfs: %v (%s)", err, out)
	}
	if string(out) != "hello from sh\nsecond image\n" {
		t.Fatalf("output = %q", out)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/new"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	rw, total, err := s.RootfsSize("c1")
	if err != nil || rw != 5 || total <= rw {
		t.Fatalf("RootfsSize = %d, %d, %v", rw, total, err)
	}
	again, err := s.RootfsMounts("c1")
	if err != nil || !slices.Equal(again[0].Options, ms[0].Options) {
		t.Fatalf("RootfsMounts = %v, %v", again, err)
	}
}

func TestLoadSkipsPresentLayers(t *testing.T) {
	requireRoot(t)
	base := tarOf(t, tfile{name: "a", body: "a"})
	s := openStore(t)
	load(t, s, legacySave(t, testImage{tags: []string{"one:1"}, layers: [][]byte{base}}), false)
	chain := digest.FromBytes(base)
	marker := filepath.Join(s.snap.Root(), "layers", chain.Encoded(), "fs", "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A second image on the same base, loaded from another archive.
	load(t, s, legacySave(t, testImage{tags: []string{"two:2"}, layers: [][]byte{base, tarOf(t, tfile{name: "b", body: "b"})}}), false)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the base layer was applied again: %v", err)
	}
}

func TestLoadOCI(t *testing.T) {
	requireRoot(t)
	bb := busyboxLayer(t)
	small := tarOf(t, tfile{name: "hello", body: "hi"})
	tests := []struct {
		name       string
		archive    []byte
		want       []string
		resolvable []string
	}{
		{
			name: "docker save v25+",
			archive: ociArchive(t, true, false, func(tag string) map[string]string {
				return map[string]string{"io.containerd.image.name": fullName(t, tag), "org.opencontainers.image.ref.name": strings.Split(tag, ":")[1]}
			}, testImage{tags: []string{"busybox:latest"}, layers: [][]byte{bb}, gzip: true}, testImage{tags: []string{"small:1"}, layers: [][]byte{small}}),
			want:       []string{"Loaded image: busybox:latest\n", "Loaded image: small:1\n"},
			resolvable: []string{"busybox", "small:1"},
		},
		{
			name: "plain layout, containerd name",
			archive: ociArchive(t, false, false, func(tag string) map[string]string {
				return map[string]string{"io.containerd.image.name": tag}
			}, testImage{tags: []string{"example.com/x/small:2"}, layers: [][]byte{small}, gzip: true}),
			want:       []string{"Loaded image: example.com/x/small:2\n"},
			resolvable: []string{"example.com/x/small:2"},
		},
		{
			name: "nested index, full ref.name",
			archive: ociArchive(t, false, true, func(tag string) map[string]string {
				return map[string]string{"org.opencontainers.image.ref.name": tag}
			}, testImage{tags: []string{"multi:3"}, layers: [][]byte{small}}),
			want:       []string{"Loaded image: multi:3\n"},
			resolvable: []string{"multi:3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			got := load(t, s, tt.archive, false)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("output = %q, want %q", got, tt.want)
			}
			for _, r := range tt.resolvable {
				if _, err := s.Resolve(r); err != nil {
					t.Errorf("Resolve(%q): %v", r, err)
				}
				insp, err := s.ImageInspect(context.Background(), r)
				if err != nil || (len(insp.RepoDigests) == 0) != (tt.name == "docker save v25+") {
					t.Fatalf("inspect %s: RepoDigests %v, %v", r, insp.RepoDigests, err)
				}
				if len(insp.RepoDigests) == 0 {
					continue // manifest.json names images by tag only
				}
				// name@digest finds it too.
				if got, err := s.Resolve(insp.RepoDigests[0]); err != nil || got.ID.String() != insp.ID {
					t.Errorf("Resolve(%q) = %v, %v", insp.RepoDigests[0], got, err)
				}
			}
		})
	}
	t.Run("bare tag is no name", func(t *testing.T) {
		s := openStore(t)
		archive := ociArchive(t, false, false, func(tag string) map[string]string {
			return map[string]string{"org.opencontainers.image.ref.name": "latest"}
		}, testImage{tags: []string{"x"}, layers: [][]byte{small}})
		got := load(t, s, archive, true)
		list, _ := s.ImageList(context.Background(), api.ImageListOptions{})
		if len(list) != 1 || len(got) != 1 || got[0] != "Loaded image ID: "+list[0].ID+"\n" {
			t.Fatalf("output = %q, images %+v", got, list)
		}
	})
}

func TestLoadRejects(t *testing.T) {
	requireRoot(t)
	small := tarOf(t, tfile{name: "hello", body: "hi"})
	good := testImage{tags: []string{"ok:1"}, layers: [][]byte{small}}
	cfg := good.configJSON(t)
	tests := []struct {
		name    string
		archive []byte
	}{
		{"not an archive", []byte("hello")},
		{"empty archive", tarArchive(t, nil)},
		{"config digest mismatch", tarArchive(t, []archiveFile{
			{name: "blobs/sha256/" + digest.FromString("x").Encoded(), body: cfg},
			{name: "l.tar", body: small},
			{name: "manifest.json", body: []byte(`[{"Config":"blobs/sha256/` + digest.FromString("x").Encoded() + `","RepoTags":["a:b"],"Layers":["l.tar"]}]`)},
		})},
		{"layer diff ID mismatch", tarArchive(t, []archiveFile{
			{name: "c.json", body: cfg},
			{name: "l.tar", body: tarOf(t, tfile{name: "other", body: "x"})},
			{name: "manifest.json", body: []byte(`[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`)},
		})},
		{"layer count mismatch", tarArchive(t, []archiveFile{
			{name: "c.json", body: cfg},
			{name: "manifest.json", body: []byte(`[{"Config":"c.json","RepoTags":["a:b"],"Layers":[]}]`)},
		})},
		{"config path escapes", tarArchive(t, []archiveFile{
			{name: "manifest.json", body: []byte(`[{"Config":"../../etc/passwd","RepoTags":["a:b"],"Layers":[]}]`)},
		})},
		{"config through escaping symlink", tarArchive(t, []archiveFile{
			{name: "c.json", link: "/etc/passwd"},
			{name: "manifest.json", body: []byte(`[{"Config":"c.json","RepoTags":["a:b"],"Layers":[]}]`)},
		})},
		{"bad tag", tarArchive(t, []archiveFile{
			{name: "c.json", body: cfg},
			{name: "l.tar", body: small},
			{name: "manifest.json", body: []byte(`[{"Config":"c.json","RepoTags":["UPPER:case"],"Layers":["l.tar"]}]`)},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			var out bytes.Buffer
			err := s.ImageLoad(context.Background(), bytes.NewReader(tt.archive), false, &out)
			if err == nil {
				t.Fatalf("ImageLoad succeeded: %s", out.String())
			}
			list, _ := s.ImageList(context.Background(), api.ImageListOptions{})
			if len(list) != 0 {
				t.Fatalf("a refused archive left images: %+v", list)
			}
			if layers, _ := s.snap.Layers(); len(layers) != 0 {
				t.Fatalf("a refused archive left layers: %v", layers)
			}
		})
	}
}

func importTar(t testing.TB, s *Store, data []byte, opts api.ImportOptions) (digest.Digest, error) {
	t.Helper()
	var out bytes.Buffer
	if err := s.ImageImport(context.Background(), bytes.NewReader(data), opts, &out); err != nil {
		return "", err
	}
	msgs := messages(t, out.Bytes())
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].Status, "sha256:") {
		t.Fatalf("import output = %q", out.String())
	}
	return digest.Digest(msgs[0].Status), nil
}

func TestImportWithChanges(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	layer := gz(t, tarOf(t, tfile{name: "bin/", dir: true}, tfile{name: "bin/app", body: "#!/bin/sh\n", mode: 0o755}))
	id, err := importTar(t, s, layer, api.ImportOptions{
		Repo:    "myimport",
		Tag:     "v2",
		Message: "from a tarball",
		Changes: []string{
			`CMD ["/bin/app", "--serve"]`,
			`ENTRYPOINT /bin/entry`,
			`ENV A=1 B="two words"`,
			`ENV LEGACY value with spaces`,
			`EXPOSE 80 53/udp`,
			`LABEL com.example.team=infra`,
			`USER 1000:1000`,
			`WORKDIR /srv`,
			`VOLUME ["/data"]`,
			`STOPSIGNAL SIGINT`,
			`ONBUILD RUN echo hi`,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	insp, err := s.ImageInspect(context.Background(), "myimport:v2")
	if err != nil {
		t.Fatal(err)
	}
	c := insp.Config
	checks := []struct {
		name string
		ok   bool
	}{
		{"id", insp.ID == id.String()},
		{"tags", slices.Equal(insp.RepoTags, []string{"myimport:v2"})},
		{"cmd", slices.Equal(c.Cmd, []string{"/bin/app", "--serve"})},
		{"entrypoint", slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c", "/bin/entry"})},
		{"env", slices.Equal(c.Env, []string{"A=1", "B=two words", "LEGACY=value with spaces"})},
		{"expose", len(c.ExposedPorts) == 2 && c.ExposedPorts["80/tcp"] == struct{}{} && c.ExposedPorts["53/udp"] == struct{}{}},
		{"label", c.Labels["com.example.team"] == "infra"},
		{"user", c.User == "1000:1000"},
		{"workdir", c.WorkingDir == "/srv"},
		{"volume", len(c.Volumes) == 1},
		{"stopsignal", c.StopSignal == "SIGINT"},
		{"onbuild", slices.Equal(c.OnBuild, []string{"RUN echo hi"})},
		{"comment", insp.Comment == "from a tarball"},
		{"rootfs", insp.RootFS.Type == "layers" && len(insp.RootFS.Layers) == 1},
		{"os", insp.Os == "linux"},
		{"driver", insp.GraphDriver != nil && insp.GraphDriver.Name == "overlay2"},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("%s wrong: %+v / %+v", ch.name, insp, c)
		}
	}
	hist, err := s.ImageHistory(context.Background(), "myimport:v2")
	if err != nil || len(hist) != 1 || hist[0].Comment != "from a tarball" || hist[0].ID != id.String() || hist[0].Size == 0 {
		t.Fatalf("history = %+v, %v", hist, err)
	}

	// Untagged import, with a bad change refused before anything is read.
	if _, err := importTar(t, s, layer, api.ImportOptions{Changes: []string{"RUN rm -rf /"}}); err == nil {
		t.Fatal("import accepted RUN as a change")
	}
	id2, err := importTar(t, s, tarOf(t, tfile{name: "x", body: "y"}), api.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	insp2, err := s.ImageInspect(context.Background(), id2.String())
	if err != nil || len(insp2.RepoTags) != 0 || insp2.Comment != "Imported from -" {
		t.Fatalf("untagged import = %+v, %v", insp2, err)
	}
}

func TestDeleteSharedLayers(t *testing.T) {
	requireRoot(t)
	base := tarOf(t, tfile{name: "base", body: "b"})
	top := tarOf(t, tfile{name: "top", body: "t"})
	s := openStore(t)
	load(t, s, legacySave(t,
		testImage{tags: []string{"a:1"}, layers: [][]byte{base}},
		testImage{tags: []string{"b:1"}, layers: [][]byte{base, top}},
	), true)
	a, _ := s.Resolve("a:1")
	b, _ := s.Resolve("b:1")
	ctx := context.Background()

	got, err := s.ImageDelete(ctx, "a:1", false, false)
	if err != nil {
		t.Fatal(err)
	}
	// The base layer stays: b uses it.
	if len(got) != 2 || got[0].Untagged != "a:1" || got[1].Deleted != a.ID.String() {
		t.Fatalf("rmi a:1 = %+v", got)
	}
	baseChain := digest.FromBytes(base)
	if !s.snap.HasLayer(baseChain) {
		t.Fatal("shared base layer was removed")
	}
	if _, err := s.content.Info(a.ID); err == nil {
		t.Fatal("config of the removed image is still stored")
	}
	got, err = s.ImageDelete(ctx, "b:1", false, false)
	if err != nil {
		t.Fatal(err)
	}
	topChain := chainIDs([]digest.Digest{digest.FromBytes(base), digest.FromBytes(top)})[1]
	want := []string{"Untagged:b:1", "Deleted:" + b.ID.String(), "Deleted:" + topChain.String(), "Deleted:" + baseChain.String()}
	var gotS []string
	for _, r := range got {
		if r.Untagged != "" {
			gotS = append(gotS, "Untagged:"+r.Untagged)
		} else {
			gotS = append(gotS, "Deleted:"+r.Deleted)
		}
	}
	if !slices.Equal(gotS, want) {
		t.Fatalf("rmi b:1 = %q, want %q", gotS, want)
	}
	if layers, _ := s.snap.Layers(); len(layers) != 0 {
		t.Fatalf("layers left: %v", layers)
	}
}

func TestDeleteRules(t *testing.T) {
	requireRoot(t)
	layer := tarOf(t, tfile{name: "f", body: "f"})
	ctx := context.Background()
	type step struct {
		ref      string
		force    bool
		wantErr  string // substring; "" = success
		wantCode string // "conflict" or "notfound"
		want     []string
	}
	tests := []struct {
		name  string
		tags  []string
		users []ContainerUse
		steps []step
	}{
		{"untag one of two names", []string{"x:1", "y:1"}, nil, []step{
			{ref: "x:1", want: []string{"Untagged:x:1"}},
			{ref: "y:1", want: []string{"Untagged:y:1", "Deleted:ID"}},
		}},
		{"by ID with names in several repositories", []string{"x:1", "y:1"}, nil, []step{
			{ref: "SHORT", wantErr: "conflict: unable to delete SHORT (must be forced) - image is referenced in multiple repositories", wantCode: "conflict"},
			{ref: "SHORT", force: true, want: []string{"Untagged:x:1", "Untagged:y:1", "Deleted:ID"}},
		}},
		{"by ID with one name", []string{"x:1"}, nil, []step{
			{ref: "SHORT", want: []string{"Untagged:x:1", "Deleted:ID"}},
		}},
		{"stopped container", []string{"x:1"}, []ContainerUse{{ID: "0123456789abcdef0123"}}, []step{
			{ref: "x:1", wantErr: `conflict: unable to remove repository reference "x:1" (must force) - container 0123456789ab is using its referenced image SHORT`, wantCode: "conflict"},
			{ref: "SHORT", wantErr: "conflict: unable to delete SHORT (must be forced) - image is being used by stopped container 0123456789ab", wantCode: "conflict"},
			{ref: "x:1", force: true, want: []string{"Untagged:x:1", "Deleted:ID"}},
		}},
		{"running container", []string{"x:1"}, []ContainerUse{{ID: "fedcba9876543210", Running: true}}, []step{
			{ref: "SHORT", force: true, wantErr: "conflict: unable to delete SHORT (cannot be forced) - image is being used by running container fedcba987654", wantCode: "conflict"},
			{ref: "x:1", force: true, want: []string{"Untagged:x:1"}},
			{ref: "SHORT", force: true, wantErr: "conflict: unable to delete SHORT (cannot be forced) - image is being used by running container fedcba987654", wantCode: "conflict"},
		}},
		{"missing", []string{"x:1"}, nil, []step{
			{ref: "nosuch", wantErr: "No such image: nosuch:latest", wantCode: "notfound"},
			{ref: "x:2", wantErr: "No such image: x:2", wantCode: "notfound"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			load(t, s, legacySave(t, testImage{tags: tt.tags, layers: [][]byte{layer}}), true)
			img, _ := s.Resolve(tt.tags[0])
			s.SetContainerUsage(func(id digest.Digest) []ContainerUse {
				if id == img.ID {
					return tt.users
				}
				return nil
			})
			short := img.ID.Encoded()[:12]
			for i, st := range tt.steps {
				ref := strings.ReplaceAll(st.ref, "SHORT", short)
				got, err := s.ImageDelete(ctx, ref, st.force, false)
				if st.wantErr != "" {
					wantErr := strings.ReplaceAll(st.wantErr, "SHORT", short)
					if err == nil || err.Error() != wantErr {
						t.Fatalf("step %d: error = %v, want %q", i, err, wantErr)
					}
					var c interface{ Conflict() }
					var nf interface{ NotFound() }
					if (st.wantCode == "conflict" && !errors.As(err, &c)) || (st.wantCode == "notfound" && !errors.As(err, &nf)) {
						t.Fatalf("step %d: error %T lacks %s behaviour", i, err, st.wantCode)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var gotS []string
				for _, r := range got {
					if r.Untagged != "" {
						gotS = append(gotS, "Untagged:"+r.Untagged)
					} else if r.Deleted == img.ID.String() {
						gotS = append(gotS, "Deleted:ID")
					}
				}
				if !slices.Equal(gotS, st.want) {
					t.Fatalf("step %d: %q, want %q", i, gotS, st.want)
				}
			}
		})
	}
}

func TestListFiltersAndTag(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	la := testImage{tags: []string{"alpha:1"}, layers: [][]byte{tarOf(t, tfile{name: "a", body: "a"})}}
	la.config.Labels = map[string]string{"tier": "web", "team": "a"}
	lb := testImage{tags: []string{"beta:1"}, layers: [][]byte{tarOf(t, tfile{name: "b", body: "b"})}}
	lb.config.Labels = map[string]string{"tier": "db"}
	load(t, s, legacySave(t, la, lb), true)
	untagged, err := importTar(t, s, tarOf(t, tfile{name: "c", body: "c"}), api.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.ImageTag(ctx, "alpha:1", "registry.example.com/ns/alpha", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.ImageTag(ctx, "nosuch", "x", "y"); err == nil {
		t.Fatal("tagging a missing image worked")
	}
	if err := s.ImageTag(ctx, "alpha:1", "Bad/Name", "1"); err == nil {
		t.Fatal("tagging with an invalid name worked")
	}
	tests := []struct {
		filters api.Filters
		want    []string // RepoTags of each listed image, joined
		wantErr bool
	}{
		{nil, []string{"<untagged>", "alpha:1,registry.example.com/ns/alpha:latest", "beta:1"}, false},
		{api.Filters{"dangling": {"true"}}, []string{"<untagged>"}, false},
		{api.Filters{"dangling": {"false"}}, []string{"alpha:1,registry.example.com/ns/alpha:latest", "beta:1"}, false},
		{api.Filters{"label": {"tier"}}, []string{"alpha:1,registry.example.com/ns/alpha:latest", "beta:1"}, false},
		{api.Filters{"label": {"tier=db"}}, []string{"beta:1"}, false},
		{api.Filters{"label": {"tier=web", "team=a"}}, []string{"alpha:1,registry.example.com/ns/alpha:latest"}, false},
		{api.Filters{"reference": {"alpha"}}, []string{"alpha:1"}, false},
		{api.Filters{"reference": {"*/ns/*"}}, []string{"registry.example.com/ns/alpha:latest"}, false},
		{api.Filters{"reference": {"beta:1"}}, []string{"beta:1"}, false},
		{api.Filters{"bogus": {"x"}}, nil, true},
		{api.Filters{"dangling": {"maybe"}}, nil, true},
		{api.Filters{"before": {"nosuch"}}, nil, true},
	}
	for _, tt := range tests {
		list, err := s.ImageList(ctx, api.ImageListOptions{Filters: tt.filters})
		if (err != nil) != tt.wantErr {
			t.Errorf("filters %v: error %v", tt.filters, err)
			continue
		}
		var got []string
		for _, im := range list {
			if len(im.RepoTags) == 0 {
				got = append(got, "<untagged>")
				if im.ID != untagged.String() {
					t.Errorf("untagged image ID %s, want %s", im.ID, untagged)
				}
			} else {
				got = append(got, strings.Join(im.RepoTags, ","))
			}
			if im.Size == 0 {
				t.Errorf("image %s has size 0", im.ID)
			}
		}
		slices.Sort(got)
		if !tt.wantErr && !slices.Equal(got, tt.want) {
			t.Errorf("filters %v: %q, want %q", tt.filters, got, tt.want)
		}
	}
}

func TestReopenRepairs(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	base := tarOf(t, tfile{name: "a", body: "a"})
	load(t, s, legacySave(t,
		testImage{tags: []string{"keep:1"}, layers: [][]byte{base}},
		testImage{tags: []string{"broken:1"}, layers: [][]byte{base, tarOf(t, tfile{name: "b", body: "b"})}},
	), true)
	broken, _ := s.Resolve("broken:1")
	keep, _ := s.Resolve("keep:1")
	// As if the engine died between committing a layer and naming it, and
	// an image's top layer got lost.
	orphan := tarOf(t, tfile{name: "o", body: "o"})
	if _, err := s.snap.ApplyLayer(digest.FromBytes(orphan), "", bytes.NewReader(orphan), s.applyOptions(), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.snap.RemoveLayer(s.ix.Images[broken.ID].ChainID); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Resolve("broken:1"); err == nil {
		t.Fatal("an image whose layers are missing still resolves")
	}
	if _, err := s2.Resolve("keep:1"); err != nil {
		t.Fatal(err)
	}
	if s2.snap.HasLayer(digest.FromBytes(orphan)) {
		t.Fatal("orphan layer kept")
	}
	if _, err := s2.PrepareRootfs("c", keep.ID); err != nil {
		t.Fatal(err)
	}
}

func TestResolveErrors(t *testing.T) {
	s := openStore(t)
	tests := []struct {
		ref, msg string
		code     string
	}{
		{"nosuch", "No such image: nosuch:latest", "notfound"},
		{"nosuch:v1", "No such image: nosuch:v1", "notfound"},
		{"example.com/a/b", "No such image: example.com/a/b:latest", "notfound"},
		{"sha256:" + strings.Repeat("a", 64), "No such image: sha256:" + strings.Repeat("a", 64), "notfound"},
		{"UPPER", "", "invalid"},
	}
	for _, tt := range tests {
		_, err := s.Resolve(tt.ref)
		if err == nil {
			t.Errorf("Resolve(%q) succeeded", tt.ref)
			continue
		}
		if tt.msg != "" && err.Error() != tt.msg {
			t.Errorf("Resolve(%q) = %q, want %q", tt.ref, err, tt.msg)
		}
		var nf interface{ NotFound() }
		var inv interface{ InvalidParameter() }
		if (tt.code == "notfound" && !errors.As(err, &nf)) || (tt.code == "invalid" && !errors.As(err, &inv)) {
			t.Errorf("Resolve(%q) error %T lacks %s", tt.ref, err, tt.code)
		}
	}
}

func TestForcedRemovalKeepsContainerLayers(t *testing.T) {
	requireRoot(t)
	layer := tarOf(t, tfile{name: "f", body: "f"})
	s := openStore(t)
	load(t, s, legacySave(t, testImage{tags: []string{"x:1"}, layers: [][]byte{layer}}), true)
	img, _ := s.Resolve("x:1")
	if _, err := s.PrepareRootfs("ctr", img.ID); err != nil {
		t.Fatal(err)
	}
	s.SetUsage(func(id digest.Digest) []string {
		if id == img.ID {
			return []string{"ctr"}
		}
		return nil
	})
	got, err := s.ImageDelete(context.Background(), "x:1", true, false)
	if err != nil || len(got) != 2 || got[1].Deleted != img.ID.String() {
		t.Fatalf("rmi -f = %+v, %v", got, err)
	}
	if !s.snap.HasLayer(digest.FromBytes(layer)) {
		t.Fatal("the container's layer went with its image")
	}
	if _, err := s.RootfsMounts("ctr"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs("ctr"); err != nil {
		t.Fatal(err)
	}
	if s.snap.HasLayer(digest.FromBytes(layer)) {
		t.Fatal("the layer outlived its last user")
	}
}

func TestEvents(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	var got []string
	s.SetEventSink(func(m events.Message) {
		if m.Type != events.ImageEventType || !strings.HasPrefix(m.Actor.ID, "sha256:") {
			t.Errorf("bad event %+v", m)
		}
		got = append(got, string(m.Action)+" "+m.Actor.Attributes["name"])
	})
	ctx := context.Background()
	id, err := importTar(t, s, tarOf(t, tfile{name: "a", body: "a"}), api.ImportOptions{Repo: "ev", Tag: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImageTag(ctx, "ev:1", "ev", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageDelete(ctx, "ev:1", false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageDelete(ctx, "ev:2", false, false); err != nil {
		t.Fatal(err)
	}
	load(t, s, legacySave(t, testImage{tags: []string{"l:1"}, layers: [][]byte{tarOf(t, tfile{name: "b", body: "b"})}}), true)
	l, _ := s.Resolve("l:1")
	want := []string{
		"import " + id.String(), "tag ev:1", "tag ev:2",
		"untag " + id.String(),
		"untag " + id.String(), "delete " + id.String(),
		"load " + l.ID.String(),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %q\nwant %q", got, want)
	}
}

func TestPrune(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	ctx := context.Background()
	tagged, _ := importTar(t, s, tarOf(t, tfile{name: "a", body: "a"}), api.ImportOptions{Repo: "keep"})
	dangling, _ := importTar(t, s, tarOf(t, tfile{name: "b", body: "bb"}), api.ImportOptions{})
	used, _ := importTar(t, s, tarOf(t, tfile{name: "c", body: "ccc"}), api.ImportOptions{})
	s.SetUsage(func(id digest.Digest) []string {
		if id == used {
			return []string{"ctr"}
		}
		return nil
	})
	tests := []struct {
		filters api.Filters
		deleted []digest.Digest
		wantErr bool
	}{
		{api.Filters{"bogus": {"1"}}, nil, true},
		{api.Filters{"until": {"not a time"}}, nil, true},
		{api.Filters{"until": {"2000-01-01"}}, nil, false},
		{nil, []digest.Digest{dangling}, false},
		{api.Filters{"dangling": {"false"}}, []digest.Digest{tagged}, false},
	}
	for _, tt := range tests {
		rep, err := s.ImagePrune(ctx, tt.filters)
		if (err != nil) != tt.wantErr {
			t.Fatalf("prune %v: %v", tt.filters, err)
		}
		if err != nil {
			continue
		}
		var got []digest.Digest
		for _, r := range rep.ImagesDeleted {
			if strings.HasPrefix(r.Deleted, "sha256:") && s.ix.Images[digest.Digest(r.Deleted)] == nil && (digest.Digest(r.Deleted) == tagged || digest.Digest(r.Deleted) == dangling || digest.Digest(r.Deleted) == used) {
				got = append(got, digest.Digest(r.Deleted))
			}
		}
		if !slices.Equal(got, tt.deleted) {
			t.Fatalf("prune %v deleted %v, want %v", tt.filters, got, tt.deleted)
		}
		if len(tt.deleted) > 0 && rep.SpaceReclaimed == 0 {
			t.Fatalf("prune %v reclaimed nothing", tt.filters)
		}
	}
	if _, err := s.Resolve(used.String()); err != nil {
		t.Fatalf("prune removed an image a container uses: %v", err)
	}
}

func TestConcurrentLoadAndDelete(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	base := tarOf(t, tfile{name: "base", body: "shared"})
	archives := [][]byte{
		legacySave(t, testImage{tags: []string{"p:1"}, layers: [][]byte{base, tarOf(t, tfile{name: "p", body: "p"})}}),
		legacySave(t, testImage{tags: []string{"q:1"}, layers: [][]byte{base, tarOf(t, tfile{name: "q", body: "q"})}}),
	}
	victim := legacySave(t, testImage{tags: []string{"v:1"}, layers: [][]byte{base}})
	ctx := context.Background()
	errs := make(chan error, 3)
	for _, a := range archives {
		go func() {
			errs <- s.ImageLoad(ctx, bytes.NewReader(a), true, io.Discard)
		}()
	}
	go func() {
		// Load and delete an image on the same base, over and over.
		for range 5 {
			if err := s.ImageLoad(ctx, bytes.NewReader(victim), true, io.Discard); err != nil {
				errs <- err
				return
			}
			if _, err := s.ImageDelete(ctx, "v:1", false, false); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"p:1", "q:1"} {
		img, err := s.Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PrepareRootfs(fmt.Sprint("c", i), img.ID); err != nil {
			t.Fatalf("%s cannot run: %v", name, err)
		}
	}
}

func TestCommit(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	base := tarOf(t, tfile{name: "a", body: "old"}, tfile{name: "b", body: "doomed"}, tfile{name: "d/", dir: true}, tfile{name: "d/x", body: "x"}, tfile{name: "keep", body: "k"})
	load(t, s, legacySave(t, testImage{tags: []string{"base:1"}, layers: [][]byte{base}}), true)
	parent, _ := s.Resolve("base:1")
	ms, err := s.PrepareRootfs("c1", parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	root := mountRootfs(t, ms)
	steps := []func() error{
		func() error { return os.WriteFile(filepath.Join(root, "new.txt"), []byte("new"), 0o640) },
		func() error { return os.WriteFile(filepath.Join(root, "a"), []byte("changed"), 0o644) },
		func() error { return os.Remove(filepath.Join(root, "b")) },
		func() error { return os.RemoveAll(filepath.Join(root, "d")) },
		func() error { return os.Mkdir(filepath.Join(root, "d"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(root, "d/y"), []byte("y"), 0o644) },
		func() error { return os.Link(filepath.Join(root, "new.txt"), filepath.Join(root, "hl")) },
		func() error { return os.Symlink("/a", filepath.Join(root, "sl")) },
		func() error { return os.Chown(filepath.Join(root, "new.txt"), 1000, 1000) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	var cfg = parent.Config.Config
	cfg.Cmd = []string{"cat", "/a"}
	id, err := s.Commit(context.Background(), "c1", parent.ID, CommitOptions{Config: cfg, Author: "me", Comment: "snapshot", CreatedBy: "docker commit", Repo: "committed"})
	if err != nil {
		t.Fatal(err)
	}
	insp, err := s.ImageInspect(context.Background(), "committed")
	if err != nil || insp.ID != id.String() || len(insp.RootFS.Layers) != 2 || insp.Author != "me" || !slices.Equal(insp.Config.Cmd, cfg.Cmd) {
		t.Fatalf("committed image = %+v, %v", insp, err)
	}
	hist, _ := s.ImageHistory(context.Background(), "committed")
	if len(hist) == 0 || hist[0].Comment != "snapshot" || hist[0].CreatedBy != "docker commit" || hist[0].Size == 0 {
		t.Fatalf("history = %+v", hist)
	}
	ms2, err := s.PrepareRootfs("c2", id)
	if err != nil {
		t.Fatal(err)
	}
	root2 := mountRootfs(t, ms2)
	checks := []struct {
		path, want string // want "" = absent
	}{
		{"a", "changed"}, {"b", ""}, {"d/x", ""}, {"d/y", "y"}, {"keep", "k"}, {"new.txt", "new"}, {"hl", "new"},
	}
	for _, c := range checks {
		b, err := os.ReadFile(filepath.Join(root2, c.path))
		if c.want == "" {
			if err == nil {
				t.Errorf("%s visible in the committed image", c.path)
			}
			continue
		}
		if err != nil || string(b) != c.want {
			t.Errorf("%s = %q, %v; want %q", c.path, b, err, c.want)
		}
	}
	if l, err := os.Readlink(filepath.Join(root2, "sl")); err != nil || l != "/a" {
		t.Errorf("sl -> %q, %v", l, err)
	}
	var st1, st2 unix.Stat_t
	unix.Stat(filepath.Join(root2, "new.txt"), &st1)
	unix.Stat(filepath.Join(root2, "hl"), &st2)
	if st1.Uid != 1000 || st1.Mode&0o777 != 0o640 {
		t.Errorf("new.txt owner %d mode %o", st1.Uid, st1.Mode&0o777)
	}
	if st1.Ino != st2.Ino {
		t.Errorf("hard link lost: %d vs %d", st1.Ino, st2.Ino)
	}
	// Committing the same changes again gives the same layer.
	id2, err := s.Commit(context.Background(), "c1", parent.ID, CommitOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := s.ix.Images[id], s.ix.Images[id2]
	if r1.ChainID != r2.ChainID {
		t.Fatalf("same changes gave layers %s and %s", r1.ChainID, r2.ChainID)
	}
}

func TestSaveRoundTrip(t *testing.T) {
	requireRoot(t)
	bb := busyboxLayer(t)
	s := openStore(t)
	load(t, s, legacySave(t,
		testImage{tags: []string{"busybox:latest", "busybox:1"}, layers: [][]byte{bb}},
		testImage{tags: []string{"example.com/app:v1"}, layers: [][]byte{bb, extraLayer(t)}},
	), true)
	imported, err := importTar(t, s, gz(t, tarOf(t, tfile{name: "x", body: "x"})), api.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		names []string
		want  []string // "tag" or "ID" of each image in the new store, sorted
	}{
		{[]string{"busybox"}, []string{"busybox:1", "busybox:latest"}},
		{[]string{"busybox:1", "example.com/app:v1"}, []string{"busybox:1", "example.com/app:v1"}},
		{[]string{imported.Encoded()[:12]}, []string{imported.String()}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := s.ImageSave(ctx, tt.names, &buf); err != nil {
			t.Fatalf("save %v: %v", tt.names, err)
		}
		s2 := openStore(t)
		load(t, s2, buf.Bytes(), true)
		list, _ := s2.ImageList(ctx, api.ImageListOptions{})
		var got []string
		for _, im := range list {
			orig, err := s.Resolve(im.ID)
			if err != nil {
				t.Fatalf("save %v: loaded image %s is not one of the saved: %v", tt.names, im.ID, err)
			}
			if len(im.RepoTags) == 0 {
				got = append(got, orig.ID.String())
			}
			got = append(got, im.RepoTags...)
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("save %v then load: %q, want %q", tt.names, got, tt.want)
		}
	}
	var buf bytes.Buffer
	if err := s.ImageSave(ctx, []string{"nosuch"}, &buf); err == nil {
		t.Fatal("saving a missing image worked")
	}
	// The OCI half of the archive alone loads the same images.
	buf.Reset()
	if err := s.ImageSave(ctx, []string{"example.com/app"}, &buf); err != nil {
		t.Fatal(err)
	}
	var oci bytes.Buffer
	tr, tw := tar.NewReader(&buf), tar.NewWriter(&oci)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			continue
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	tw.Close()
	s3 := openStore(t)
	if got := load(t, s3, oci.Bytes(), true); !slices.Equal(got, []string{"Loaded image: example.com/app:v1\n"}) {
		t.Fatalf("loading the OCI layout alone: %q", got)
	}
	a, _ := s.Resolve("example.com/app:v1")
	b, err := s3.Resolve("example.com/app:v1")
	if err != nil || a.ID != b.ID {
		t.Fatalf("OCI layout gave %v, %v; want %s", b, err, a.ID)
	}
}

func TestLoadClonesPresentDiff(t *testing.T) {
	requireRoot(t)
	s := openStore(t)
	base1 := tarOf(t, tfile{name: "a", body: "a1"}, tfile{name: "d/", dir: true}, tfile{name: "d/x", body: "x"})
	base2 := tarOf(t, tfile{name: "a", body: "a2"}, tfile{name: "d/", dir: true}, tfile{name: "d/x", body: "x2"}, tfile{name: "only2", body: "2"})
	top := tarOf(t, tfile{name: ".wh.a"}, tfile{name: "d/", dir: true}, tfile{name: "d/.wh..wh..opq"}, tfile{name: "d/y", body: "y"}, tfile{name: "s", link: "d/y"})
	load(t, s, legacySave(t, testImage{tags: []string{"one:1"}, layers: [][]byte{base1, top}}), true)
	topChain := chainIDs([]digest.Digest{digest.FromBytes(base1), digest.FromBytes(top)})[1]
	marker := filepath.Join(s.snap.Root(), "layers", topChain.Encoded(), "fs", "marker")
	if err := os.WriteFile(marker, []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same top diff on another base.
	load(t, s, legacySave(t, testImage{tags: []string{"two:2"}, layers: [][]byte{base2, top}}), true)
	two, _ := s.Resolve("two:2")
	root := mountRootfs(t, mustPrepare(t, s, "c", two.ID))
	checks := []struct{ path, want string }{
		{"a", ""}, {"d/x", ""}, {"d/y", "y"}, {"s", "y"}, {"only2", "2"},
		{"marker", "m"}, // cloned, not extracted again
	}
	for _, c := range checks {
		b, err := os.ReadFile(filepath.Join(root, c.path))
		if c.want == "" {
			if err == nil {
				t.Errorf("%s visible", c.path)
			}
			continue
		}
		if string(b) != c.want {
			t.Errorf("%s = %q, %v; want %q", c.path, b, err, c.want)
		}
	}
	// The clone stands alone: removing the first image keeps it whole,
	// and save reproduces its tar.
	if _, err := s.ImageDelete(context.Background(), "one:1", false, false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "d/y")); err != nil || string(b) != "y" {
		t.Fatalf("after removing the first image: %q, %v", b, err)
	}
	if err := os.Remove(filepath.Join(s.snap.Root(), "layers", chainIDs([]digest.Digest{digest.FromBytes(base2), digest.FromBytes(top)})[1].Encoded(), "fs", "marker")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.ImageSave(context.Background(), []string{"two:2"}, &buf); err != nil {
		t.Fatalf("save of an image with a cloned layer: %v", err)
	}
}

func mustPrepare(t *testing.T, s *Store, key string, id digest.Digest) []Mount {
	t.Helper()
	ms, err := s.PrepareRootfs(key, id)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// fullName is the normalised full form of a familiar name.
func fullName(t testing.TB, familiar string) string {
	t.Helper()
	named, err := reference.ParseNormalizedNamed(familiar)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(named).String()
}
