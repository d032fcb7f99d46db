package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"testing"
)

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skipf("needs a static busybox at %s (Debian package busybox-static): %v", DefaultBusybox, err)
	}
}

// readTar returns the headers and regular-file contents of a tar.
func readTar(t *testing.T, data []byte) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	hdrs := map[string]*tar.Header{}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if _, dup := hdrs[name]; dup {
			t.Errorf("duplicate tar entry %q", name)
		}
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", h.Name, err)
			}
			files[name] = b
		}
	}
	return hdrs, files
}

func TestRootfs(t *testing.T) {
	needBusybox(t)
	img, err := Build(Options{Files: map[string]string{"/srv/data/hello.txt": "hello\n"}})
	if err != nil {
		t.Fatal(err)
	}
	hdrs, files := readTar(t, img.Layer)
	want, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["bin/busybox"], want) {
		t.Errorf("bin/busybox differs from %s", DefaultBusybox)
	}
	tests := []struct {
		name     string
		typ      byte
		linkname string
		content  string
		mode     int64
	}{
		{name: "bin/sh", typ: tar.TypeSymlink, linkname: "/bin/busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, linkname: "/bin/busybox"},
		{name: "usr/bin/env", typ: tar.TypeSymlink, linkname: "/bin/busybox"},
		{name: "etc/passwd", typ: tar.TypeReg, content: Passwd, mode: 0o644},
		{name: "etc/group", typ: tar.TypeReg, content: Group, mode: 0o644},
		{name: "srv/data/hello.txt", typ: tar.TypeReg, content: "hello\n", mode: 0o644},
		{name: "srv", typ: tar.TypeDir, mode: 0o755},
		{name: "tmp", typ: tar.TypeDir, mode: 0o1777},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755},
	}
	for _, tt := range tests {
		h, ok := hdrs[tt.name]
		if !ok {
			t.Errorf("%s: missing", tt.name)
			continue
		}
		if h.Typeflag != tt.typ {
			t.Errorf("%s: type %c, want %c", tt.name, h.Typeflag, tt.typ)
		}
		if tt.linkname != "" && h.Linkname != tt.linkname {
			t.Errorf("%s: link %q, want %q", tt.name, h.Linkname, tt.linkname)
		}
		if tt.content != "" && string(files[tt.name]) != tt.content {
			t.Errorf("%s: content %q, want %q", tt.name, files[tt.name], tt.content)
		}
		if tt.mode != 0 && h.Mode != tt.mode {
			t.Errorf("%s: mode %o, want %o", tt.name, h.Mode, tt.mode)
		}
	}
	// Every entry's parent directory comes before it.
	tr := tar.NewReader(bytes.NewReader(img.Layer))
	dirs := map[string]bool{".": true}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !dirs[path.Dir(name)] {
			t.Errorf("%s comes before its directory", name)
		}
		if h.Typeflag == tar.TypeDir {
			dirs[name] = true
		}
	}
	if h := hdrs["home/user"]; h == nil || h.Uid != UserID {
		t.Errorf("home/user is not owned by uid %d: %+v", UserID, h)
	}
}

func TestBuildDeterministic(t *testing.T) {
	needBusybox(t)
	a, err := Build(Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.DiffID != b.DiffID {
		t.Errorf("two builds differ: %s/%s vs %s/%s", a.ID, a.DiffID, b.ID, b.DiffID)
	}
	c, err := Build(Options{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == a.ID {
		t.Errorf("a different Cmd gave the same image ID %s", c.ID)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestDockerSave(t *testing.T) {
	needBusybox(t)
	img, err := Build(Options{Tag: "example/bb:v1"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := img.WriteDockerSave(&buf); err != nil {
		t.Fatal(err)
	}
	_, files := readTar(t, buf.Bytes())
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %+v", manifest)
	}
	m := manifest[0]
	if got := sha(files[m.Config]); got != img.ID {
		t.Errorf("config digest %s, want %s", got, img.ID)
	}
	if got := sha(files[m.Layers[0]]); got != img.DiffID {
		t.Errorf("layer digest %s, want %s", got, img.DiffID)
	}
	if len(m.RepoTags) != 1 || m.RepoTags[0] != "example/bb:v1" {
		t.Errorf("RepoTags %v", m.RepoTags)
	}
	var cfg struct {
		OS     string
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		Config struct{ Cmd []string }
	}
	if err := json.Unmarshal(files[m.Config], &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if cfg.OS != "linux" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != img.DiffID {
		t.Errorf("config: %+v", cfg)
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(files["repositories"], &repos); err != nil {
		t.Fatalf("repositories: %v", err)
	}
	if _, ok := repos["example/bb"]["v1"]; !ok {
		t.Errorf("repositories: %v", repos)
	}
}

func TestOCILayout(t *testing.T) {
	needBusybox(t)
	img, err := Build(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := img.WriteOCILayout(&buf); err != nil {
		t.Fatal(err)
	}
	_, files := readTar(t, buf.Bytes())
	// Every blob is named by its digest.
	n := 0
	for name, data := range files {
		if d, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			n++
			if sha(data) != "sha256:"+d {
				t.Errorf("blob %s has digest %s", name, sha(data))
			}
		}
	}
	if n != 3 {
		t.Errorf("%d blobs, want 3 (layer, config, manifest)", n)
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json: %+v", index)
	}
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	mb := files["blobs/sha256/"+strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")]
	if err := json.Unmarshal(mb, &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if manifest.Config.Digest != img.ID || len(manifest.Layers) != 1 || manifest.Layers[0].Digest != img.DiffID {
		t.Errorf("manifest %+v", manifest)
	}
	if got := index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "latest" {
		t.Errorf("ref.name %q", got)
	}
}

func TestParseAppletList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "bin/sh\nusr/bin/env\n", want: []string{"bin/sh", "usr/bin/env"}},
		{in: "  sbin/init \n\nbin/sh\nbin/sh\n", want: []string{"bin/sh", "sbin/init"}},
		{in: "", wantErr: true},
		{in: "/bin/sh\n", wantErr: true},
		{in: "bin/../etc/passwd\n", wantErr: true},
		{in: "linuxrc\nbin/sh\n", want: []string{"bin/sh"}},
		{in: "linuxrc\n", wantErr: true},
		{in: "usr/bin//x\n", wantErr: true},
		{in: "usr/local/bin/x\nsbin/x\n", want: []string{"sbin/x"}},
	}
	for _, tt := range tests {
		got, err := ParseAppletList([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAppletList(%q) error %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseAppletList(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseAppletList(f *testing.F) {
	f.Add([]byte("bin/sh\nusr/bin/env\n"))
	f.Add([]byte("bin/../x\n"))
	f.Add([]byte("\x00\n/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := ParseAppletList(data)
		if err != nil {
			return
		}
		for _, p := range list {
			if checkAppletPath(p) != nil || strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("accepted bad path %q", p)
			}
			switch path.Dir(p) {
			case "bin", "sbin", "usr/bin", "usr/sbin":
			default:
				t.Fatalf("accepted %q outside the applet directories", p)
			}
		}
	})
}
