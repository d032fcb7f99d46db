//go:build linux

package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func FuzzParseDockerManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"c.json","RepoTags":["busybox:latest"],"Layers":["a/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"blobs/sha256/` + "aa" + `","RepoTags":null,"Layers":["blobs/sha256/../x"]}]`))
	f.Add([]byte(`[{"Config":""}]`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		targets, err := parseDockerManifest(b)
		if err != nil {
			return
		}
		for _, tg := range targets {
			if tg.configPath == "" {
				t.Fatal("target without a config path")
			}
			for _, r := range tg.refs {
				if r == nil {
					t.Fatal("nil reference")
				}
			}
		}
	})
}

func FuzzParseOCI(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `","size":1,"annotations":{"io.containerd.image.name":"library/busybox:latest"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:00"},"layers":[]}`))
	f.Add([]byte(`{"manifests":[{"digest":"md5:x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ix, err := parseOCIIndex(b); err == nil {
			for _, d := range ix.Manifests {
				if _, err := blobPath(d.Digest); err != nil {
					t.Fatalf("accepted descriptor %q has no blob path: %v", d.Digest, err)
				}
				ociNames(d)
			}
		}
		if m, err := parseOCIManifest(b); err == nil {
			if _, err := blobPath(m.Config.Digest); err != nil {
				t.Fatalf("accepted config digest %q has no blob path", m.Config.Digest)
			}
		}
	})
}

func FuzzApplyChange(f *testing.F) {
	for _, s := range []string{`CMD ["a","b"]`, `ENV A=1 B="x y"`, `ENV A b c`, `LABEL "k"='v'`, `EXPOSE 80-90/udp`, `WORKDIR rel`, `VOLUME /a /b`, `ONBUILD RUN x`, `STOPSIGNAL 9`, `USER`, `ENV "unterminated`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var cfg dockerspec.DockerOCIImageConfig
		if err := applyChange(&cfg, line); err != nil {
			return
		}
		for _, e := range cfg.Env {
			if len(e) == 0 || e[0] == '=' {
				t.Fatalf("env entry %q without a name from %q", e, line)
			}
		}
		if cfg.WorkingDir != "" && cfg.WorkingDir[0] != '/' {
			t.Fatalf("relative workdir %q from %q", cfg.WorkingDir, line)
		}
	})
}

// FuzzReferences feeds arbitrary names to every entry point that parses
// a reference typed by a user.
func FuzzReferences(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:latest", "library/busybox", "localhost:5000/a/b:c", "a@sha256:" + "0000000000000000000000000000000000000000000000000000000000000000", "sha256:abc", "abc", "UPPER", "", ":", "@"} {
		f.Add(s, "tag")
	}
	s, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref, tag string) {
		_, err := s.Resolve(ref)
		if err == nil {
			t.Fatalf("Resolve(%q) found an image in an empty store", ref)
		}
		var nf interface{ NotFound() }
		var inv interface{ InvalidParameter() }
		if !asAny(err, &nf) && !asAny(err, &inv) {
			t.Fatalf("Resolve(%q) error %T is neither NotFound nor InvalidParameter", ref, err)
		}
		if named, err := parseTarget(ref, tag); err == nil && named.Tag() == "" {
			t.Fatalf("parseTarget(%q, %q) gave no tag", ref, tag)
		}
		if _, err := s.ImageDelete(context.Background(), ref, true, false); err == nil {
			t.Fatalf("ImageDelete(%q) succeeded in an empty store", ref)
		}
	})
}

// FuzzImageLoad feeds arbitrary archives to docker load and checks that
// nothing appears outside the store.
func FuzzImageLoad(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root: layers are extracted with their owners")
	}
	small := tarOf(f, tfile{name: "hello", body: "hi"})
	f.Add(legacySave(f, testImage{tags: []string{"a:1"}, layers: [][]byte{small}}))
	f.Add(ociArchive(f, false, true, nil, testImage{layers: [][]byte{small}}))
	f.Add(tarArchive(f, []archiveFile{{name: "manifest.json", body: []byte(`[{"Config":"../x","Layers":[]}]`)}}))
	f.Fuzz(func(t *testing.T, archive []byte) {
		parent := t.TempDir()
		s, err := Open(filepath.Join(parent, "store"))
		if err != nil {
			t.Fatal(err)
		}
		s.ImageLoad(context.Background(), bytes.NewReader(archive), true, io.Discard)
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("load wrote beside the store: %v", entries)
		}
		left, _ := os.ReadDir(filepath.Join(parent, "store", "tmp"))
		if len(left) != 0 {
			t.Fatalf("load left %v in tmp", left)
		}
	})
}

func asAny(err error, target any) bool { return errors.As(err, target) }

func FuzzParseUntil(f *testing.F) {
	for _, s := range []string{"10m", "2024-01-01", "2024-01-01T10:00:00Z", "1700000000", "1700000000.5", ".", "", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseUntil(v)
		if d, derr := time.ParseDuration(v); derr == nil && d >= 0 && (err != nil || got.After(time.Now())) {
			t.Fatalf("parseUntil(%q) = %v, %v; want a time in the past", v, got, err)
		}
		var inv interface{ InvalidParameter() }
		if err != nil && !asAny(err, &inv) {
			t.Fatalf("parseUntil(%q) error %T is not a 400", v, err)
		}
	})
}
