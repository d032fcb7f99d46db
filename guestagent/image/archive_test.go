//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// This file builds the archives the tests load: layers made of files of
// known content and a busybox rootfs, wrapped as docker save writes them
// (legacy manifest.json form and the OCI form of v25+) and as plain OCI
// layouts.

type tfile struct {
	name string
	body string
	link string // symlink target
	mode int64
	dir  bool
}

func tarOf(t testing.TB, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: time.Unix(1_700_000_000, 0)}
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// busyboxLayer is a rootfs with /bin/busybox and its applet symlinks.
func busyboxLayer(t testing.TB) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs Debian's busybox-static at /bin/busybox: %v", err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	files := []tfile{{name: "bin/", dir: true}, {name: "bin/busybox", body: string(bb), mode: 0o755},
		{name: "etc/", dir: true}, {name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "tmp/", dir: true, mode: 0o1777}}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		files = append(files, tfile{name: "bin/" + applet, link: "busybox"})
	}
	return tarOf(t, files...)
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// testImage is an image to put in an archive.
type testImage struct {
	tags   []string
	layers [][]byte // uncompressed layer tars, base first
	config dockerspec.DockerOCIImageConfig
	gzip   bool // compress layers (OCI forms)
}

func (ti testImage) configJSON(t testing.TB) []byte {
	t.Helper()
	created := time.Unix(1_700_000_000, 0).UTC()
	var img dockerspec.DockerOCIImage
	img.Created = &created
	img.Architecture = goruntime.GOARCH
	img.OS = "linux"
	img.Config = ti.config
	img.RootFS.Type = "layers"
	for i, l := range ti.layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromBytes(l))
		img.History = append(img.History, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("layer %d", i)})
	}
	img.History = append(img.History, ocispec.History{Created: &created, CreatedBy: "CMD", EmptyLayer: true})
	b, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type archiveFile struct {
	name string
	body []byte
	link string
}

func tarArchive(t testing.TB, files []archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
			}
		}
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	return buf.Bytes()
}

// legacySave writes the pre-v25 docker save form: <config hex>.json,
// <layer id>/layer.tar (a repeated layer as a symlink to the first copy)
// and manifest.json.
func legacySave(t testing.TB, images ...testImage) []byte {
	t.Helper()
	var files []archiveFile
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	seen := map[digest.Digest]string{}
	for _, ti := range images {
		cfg := ti.configJSON(t)
		cfgName := digest.FromBytes(cfg).Encoded() + ".json"
		files = append(files, archiveFile{name: cfgName, body: cfg})
		e := entry{Config: cfgName, RepoTags: ti.tags}
		for _, l := range ti.layers {
			d := digest.FromBytes(l)
			name := fmt.Sprintf("%x/layer.tar", sha256.Sum256([]byte(d.String()+cfgName)))
			if first, ok := seen[d]; ok {
				files = append(files, archiveFile{name: name, link: "../" + first})
			} else {
				seen[d] = name
				files = append(files, archiveFile{name: name, body: l})
			}
			e.Layers = append(e.Layers, name)
		}
		manifest = append(manifest, e)
	}
	mb, _ := json.Marshal(manifest)
	files = append(files, archiveFile{name: "manifest.json", body: mb})
	return tarArchive(t, files)
}

// ociArchive writes an OCI layout: blobs/sha256/*, oci-layout and
// index.json. With dockerSave set it also writes manifest.json, as docker
// save does since v25. nested wraps each manifest in an image index, as
// a multi-platform image has. Names go in the annotations given.
func ociArchive(t testing.TB, dockerSave, nested bool, annotate func(tag string) map[string]string, images ...testImage) []byte {
	t.Helper()
	blobs := map[digest.Digest][]byte{}
	add := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs[d] = b
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for _, ti := range images {
		cfgDesc := add(ti.configJSON(t))
		cfgDesc.MediaType = ocispec.MediaTypeImageConfig
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc}
		m.SchemaVersion = 2
		e := entry{Config: "blobs/sha256/" + cfgDesc.Digest.Encoded(), RepoTags: ti.tags}
		for _, l := range ti.layers {
			body, mt := l, ocispec.MediaTypeImageLayer
			if ti.gzip {
				body, mt = gz(t, l), ocispec.MediaTypeImageLayerGzip
			}
			ld := add(body)
			ld.MediaType = mt
			m.Layers = append(m.Layers, ld)
			e.Layers = append(e.Layers, "blobs/sha256/"+ld.Digest.Encoded())
		}
		manifest = append(manifest, e)
		mb, _ := json.Marshal(m)
		md := add(mb)
		md.MediaType = ocispec.MediaTypeImageManifest
		top := md
		if nested {
			md.Platform = &ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH}
			other := md
			other.Platform = &ocispec.Platform{OS: "linux", Architecture: "s390x-not-this"}
			other.Digest = add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}}`)).Digest
			inner := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{other, md}}
			inner.SchemaVersion = 2
			ib, _ := json.Marshal(inner)
			top = add(ib)
			top.MediaType = ocispec.MediaTypeImageIndex
		}
		tags := ti.tags
		if len(tags) == 0 {
			tags = []string{""}
		}
		for _, tag := range tags {
			d := top
			if tag != "" && annotate != nil {
				d.Annotations = annotate(tag)
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	var files []archiveFile
	for d, b := range blobs {
		files = append(files, archiveFile{name: "blobs/sha256/" + d.Encoded(), body: b})
	}
	ib, _ := json.Marshal(index)
	files = append(files, archiveFile{name: "index.json", body: ib}, archiveFile{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)})
	if dockerSave {
		mb, _ := json.Marshal(manifest)
		files = append(files, archiveFile{name: "manifest.json", body: mb})
	}
	return tarArchive(t, files)
}
