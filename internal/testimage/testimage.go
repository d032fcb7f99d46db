// Package testimage owns the images that Berth's tests and benchmarks make
// for themselves: a busybox root filesystem built from the host's static
// busybox binary (with a symlink per applet, /etc/passwd and /etc/group
// naming root and a non-root user), written as a plain rootfs tar (for
// docker import), as a docker-save tarball, or as an OCI image layout (both
// for docker load). Nothing is downloaded; the output is deterministic for a
// given busybox binary.
package testimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	goruntime "runtime"
	"sort"
	"strings"
	"time"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// The non-root user in the image.
const (
	UserName  = "user"
	UserID    = 1000
	GroupName = "user"
	GroupID   = 1000
	// ExtraGroupName is a supplementary group of UserName.
	ExtraGroupName = "staff"
	ExtraGroupID   = 50
)

// Passwd and Group are the image's /etc/passwd and /etc/group.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"user:x:1000:1000:Test User:/home/user:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	Group = "root:x:0:\n" +
		"staff:x:50:user\n" +
		"user:x:1000:\n" +
		"nogroup:x:65534:\n"
)

// epoch is the modification time of every entry, so that the same busybox
// binary always gives the same layer digest.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Options say what to build.
type Options struct {
	// Busybox is the static busybox binary; DefaultBusybox when empty.
	Busybox string
	// Tag is the image's name:tag in the tarball; "berth-test/busybox:latest"
	// when empty.
	Tag string
	// Files are extra regular files (path without leading slash -> content)
	// added to the rootfs with mode 0644.
	Files map[string]string
	// Cmd is the image's CMD; ["sh"] when nil.
	Cmd []string
}

func (o Options) busybox() string {
	if o.Busybox == "" {
		return DefaultBusybox
	}
	return o.Busybox
}

// Tag returns the tag the tarball carries.
func (o Options) tag() string {
	if o.Tag == "" {
		return "berth-test/busybox:latest"
	}
	return o.Tag
}

func (o Options) cmd() []string {
	if o.Cmd == nil {
		return []string{"sh"}
	}
	return o.Cmd
}

// Image is a built image: its layer, config and identity.
type Image struct {
	Tag    string
	Layer  []byte // uncompressed rootfs tar
	Config []byte // image config JSON
	// ID is "sha256:" + hex digest of Config, as docker reports it.
	ID string
	// DiffID is "sha256:" + hex digest of Layer.
	DiffID string
}

// Build assembles the image in memory (a few megabytes).
func Build(opts Options) (*Image, error) {
	var layer bytes.Buffer
	if err := WriteRootfs(&layer, opts); err != nil {
		return nil, err
	}
	diffID := digestOf(layer.Bytes())
	cfg := imageConfig{
		Architecture: goarch(),
		OS:           "linux",
		Created:      epoch,
		Config: containerConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: opts.cmd(),
		},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []history{{
			Created:   epoch,
			CreatedBy: "testimage: busybox rootfs",
		}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("testimage: encode image config: %w", err)
	}
	return &Image{
		Tag:    opts.tag(),
		Layer:  layer.Bytes(),
		Config: cfgJSON,
		ID:     digestOf(cfgJSON),
		DiffID: diffID,
	}, nil
}

// WriteRootfs writes the busybox root filesystem as an uncompressed tar.
func WriteRootfs(w io.Writer, opts Options) error {
	bin, err := os.ReadFile(opts.busybox())
	if err != nil {
		return fmt.Errorf("testimage: read busybox: %w", err)
	}
	applets, err := listApplets(opts.busybox())
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	dirs := []struct {
		name string
		mode int64
		uid  int
	}{
		{"bin", 0o755, 0}, {"dev", 0o755, 0}, {"etc", 0o755, 0},
		{"home", 0o755, 0}, {"home/user", 0o755, UserID},
		{"proc", 0o555, 0}, {"root", 0o700, 0}, {"sbin", 0o755, 0},
		{"sys", 0o555, 0}, {"tmp", 0o1777, 0}, {"usr", 0o755, 0},
		{"usr/bin", 0o755, 0}, {"usr/sbin", 0o755, 0}, {"var", 0o755, 0},
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		gid := d.uid
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode,
			Uid: d.uid, Gid: gid, ModTime: epoch, Format: tar.FormatPAX,
		}); err != nil {
			return fmt.Errorf("testimage: write dir %s: %w", d.name, err)
		}
		seen[d.name] = true
	}
	if err := writeFile(tw, "bin/busybox", 0o755, bin); err != nil {
		return err
	}
	seen["bin/busybox"] = true
	for _, a := range applets {
		if seen[a] {
			continue
		}
		if !seen[path.Dir(a)] {
			return fmt.Errorf("testimage: applet %s lies in an unknown directory", a)
		}
		seen[a] = true
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeSymlink, Name: a, Linkname: "/bin/busybox",
			Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX,
		}); err != nil {
			return fmt.Errorf("testimage: write applet link %s: %w", a, err)
		}
	}
	files := map[string]string{
		"etc/passwd":   Passwd,
		"etc/group":    Group,
		"etc/hostname": "testimage\n",
	}
	for name, content := range opts.Files {
		files[strings.TrimPrefix(name, "/")] = content
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !seen[path.Dir(name)] {
			if err := mkdirAll(tw, path.Dir(name), seen); err != nil {
				return err
			}
		}
		if err := writeFile(tw, name, 0o644, []byte(files[name])); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("testimage: close rootfs tar: %w", err)
	}
	return nil
}

func mkdirAll(tw *tar.Writer, dir string, seen map[string]bool) error {
	if dir == "." || dir == "/" || seen[dir] {
		return nil
	}
	if err := mkdirAll(tw, path.Dir(dir), seen); err != nil {
		return err
	}
	seen[dir] = true
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX,
	}); err != nil {
		return fmt.Errorf("testimage: write dir %s: %w", dir, err)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		ModTime: epoch, Format: tar.FormatPAX,
	}); err != nil {
		return fmt.Errorf("testimage: write header %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("testimage: write %s: %w", name, err)
	}
	return nil
}

// listApplets asks busybox for the install path of each of its applets.
func listApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("testimage: %s --list-full: %w", busybox, err)
	}
	applets, err := ParseAppletList(out)
	if err != nil {
		return nil, fmt.Errorf("testimage: %s --list-full: %w", busybox, err)
	}
	return applets, nil
}

// ParseAppletList parses the output of `busybox --list-full`: one relative
// install path per line (e.g. "bin/sh", "usr/bin/env"). It returns the
// paths sorted and without duplicates, skips applets outside bin, sbin,
// usr/bin and usr/sbin (such as "linuxrc"), and refuses any path that is
// absolute or has an empty, "." or ".." element.
func ParseAppletList(out []byte) ([]string, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := checkAppletPath(line); err != nil {
			return nil, err
		}
		if !inAppletDir(line) {
			continue
		}
		set[line] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read applet list: %w", err)
	}
	if len(set) == 0 {
		return nil, errors.New("empty applet list")
	}
	list := make([]string, 0, len(set))
	for p := range set {
		list = append(list, p)
	}
	sort.Strings(list)
	return list, nil
}

func checkAppletPath(p string) error {
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("applet path %q: bad element", p)
		}
	}
	return nil
}

func inAppletDir(p string) bool {
	switch path.Dir(p) {
	case "bin", "sbin", "usr/bin", "usr/sbin":
		return true
	}
	return false
}

// WriteDockerSave writes the image as a `docker save` tarball: manifest.json,
// repositories, the config as <hex>.json and the layer as <hex>/layer.tar.
func (img *Image) WriteDockerSave(w io.Writer) error {
	cfgHex := strings.TrimPrefix(img.ID, "sha256:")
	layerHex := strings.TrimPrefix(img.DiffID, "sha256:")
	repo, tag := splitTag(img.Tag)
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   cfgHex + ".json",
		"RepoTags": []string{img.Tag},
		"Layers":   []string{layerHex + "/layer.tar"},
	}})
	if err != nil {
		return fmt.Errorf("testimage: encode manifest.json: %w", err)
	}
	repos, err := json.Marshal(map[string]map[string]string{repo: {tag: layerHex}})
	if err != nil {
		return fmt.Errorf("testimage: encode repositories: %w", err)
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: layerHex + "/", Mode: 0o755, ModTime: epoch}); err != nil {
		return fmt.Errorf("testimage: write layer dir: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{layerHex + "/VERSION", []byte("1.0")},
		{layerHex + "/layer.tar", img.Layer},
		{cfgHex + ".json", img.Config},
		{"manifest.json", manifest},
		{"repositories", repos},
	} {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("testimage: close docker-save tar: %w", err)
	}
	return nil
}

// WriteOCILayout writes the image as a tarred OCI image layout (oci-layout,
// index.json, blobs/sha256/...), the image manifest annotated with its tag.
func (img *Image) WriteOCILayout(w io.Writer) error {
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{
			MediaType: "application/vnd.oci.image.config.v1+json",
			Digest:    img.ID, Size: int64(len(img.Config)),
		},
		"layers": []descriptor{{
			MediaType: "application/vnd.oci.image.layer.v1.tar",
			Digest:    img.DiffID, Size: int64(len(img.Layer)),
		}},
	})
	if err != nil {
		return fmt.Errorf("testimage: encode OCI manifest: %w", err)
	}
	_, tag := splitTag(img.Tag)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json",
			Digest:    digestOf(manifest), Size: int64(len(manifest)),
			Annotations: map[string]string{
				"io.containerd.image.name":          img.Tag,
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("testimage: encode OCI index: %w", err)
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("testimage: write %s: %w", d, err)
		}
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	for _, f := range []struct {
		name string
		data []byte
	}{
		{blob(img.DiffID), img.Layer},
		{blob(img.ID), img.Config},
		{blob(digestOf(manifest)), manifest},
		{"index.json", index},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	} {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("testimage: close OCI layout tar: %w", err)
	}
	return nil
}

// splitTag splits "name:tag" (the name may hold a registry port).
func splitTag(ref string) (name, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

// goarch is the architecture of the image: the host busybox runs here.
func goarch() string { return goruntime.GOARCH }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type imageConfig struct {
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Created      time.Time       `json:"created"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []history       `json:"history"`
}

type containerConfig struct {
	Env []string `json:"Env"`
	Cmd []string `json:"Cmd"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}
