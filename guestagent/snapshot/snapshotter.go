//go:build linux

package snapshot

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// The on-disk layout under the snapshotter's root:
//
//	layers/<chain-id hex>/fs          a committed, read-only layer
//	layers/<chain-id hex>/layer.json  its metadata (parent, link, size)
//	l/<link>                          short symlink to layers/<hex>/fs or
//	                                  containers/<key>, used in overlay
//	                                  mount options
//	containers/<key>/upper, work      a container's writable layer
//	containers/<key>/container.json   its metadata (parent chain ID)
//	empty/                            lower layer of images with no layers
//	tmp/                              work in progress; cleared on Open
//
// Layers and container layers are built completely under tmp/, metadata
// included, then renamed into place, so after a crash a layer is either
// fully there or absent. Removal renames out of place first for the same
// reason.

// Mount is one mount, as data: what a runtime would pass to mount(2).
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// LayerInfo describes a committed layer.
type LayerInfo struct {
	ChainID digest.Digest `json:"chainID"`
	Parent  digest.Digest `json:"parent,omitempty"`
	Link    string        `json:"link"`
	Size    int64         `json:"size"`
}

type containerMeta struct {
	Key    string        `json:"key"`
	Parent digest.Digest `json:"parent,omitempty"`
	// Link is the container directory's short name in l/.
	Link string `json:"link,omitempty"`
}

// NotFoundError names a layer or container layer that does not exist.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return "snapshot: no such " + e.What }

// NotFound maps to 404 at the API.
func (e *NotFoundError) NotFound() {}

// Snapshotter stores layers for overlayfs.
type Snapshotter struct {
	root string
	mu   sync.Mutex
}

// Open opens (creating if needed) a snapshotter rooted at root and throws
// away any work an earlier process left unfinished.
func Open(root string) (*Snapshotter, error) {
	for _, d := range []string{"layers", "l", "containers", "empty", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot: create %s: %w", d, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "empty"), 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: chmod empty: %w", err)
	}
	s := &Snapshotter{root: root}
	left, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read tmp: %w", err)
	}
	for _, e := range left {
		if err := os.RemoveAll(filepath.Join(root, "tmp", e.Name())); err != nil {
			return nil, fmt.Errorf("snapshot: clear unfinished %s: %w", e.Name(), err)
		}
	}
	// Every layer needs its link (for lowerdir options).
	layers, err := s.Layers()
	if err != nil {
		return nil, err
	}
	for _, id := range layers {
		info, err := s.Layer(id)
		if err != nil || !linkPattern.MatchString(info.Link) {
			continue
		}
		p := filepath.Join(root, "l", info.Link)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..", "layers", id.Encoded(), "fs"), p); err != nil {
				return nil, fmt.Errorf("snapshot: restore link of layer %s: %w", id, err)
			}
		}
	}
	ctrs, err := os.ReadDir(filepath.Join(root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list container layers: %w", err)
	}
	for _, e := range ctrs {
		m, err := s.container(e.Name())
		if err != nil || !linkPattern.MatchString(m.Link) {
			continue
		}
		p := filepath.Join(root, "l", m.Link)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..", "containers", m.Key), p); err != nil {
				return nil, fmt.Errorf("snapshot: restore link of container layer %s: %w", m.Key, err)
			}
		}
	}
	// Links whose layer never made it into place (or was removed) dangle.
	links, err := os.ReadDir(filepath.Join(root, "l"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read links: %w", err)
	}
	for _, e := range links {
		p := filepath.Join(root, "l", e.Name())
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
	return s, nil
}

// Root is the directory the snapshotter lives in.
func (s *Snapshotter) Root() string { return s.root }

func (s *Snapshotter) layerDir(chainID digest.Digest) (string, error) {
	if err := chainID.Validate(); err != nil || chainID.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("snapshot: invalid chain ID %q", chainID)
	}
	return filepath.Join(s.root, "layers", chainID.Encoded()), nil
}

var linkPattern = regexp.MustCompile(`^[A-Z2-7]{1,16}$`)

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *Snapshotter) containerDir(key string) (string, error) {
	if !keyPattern.MatchString(key) || strings.Contains(key, "..") {
		return "", fmt.Errorf("snapshot: invalid container key %q", key)
	}
	return filepath.Join(s.root, "containers", key), nil
}

// Layer returns a committed layer's metadata.
func (s *Snapshotter) Layer(chainID digest.Digest) (LayerInfo, error) {
	dir, err := s.layerDir(chainID)
	if err != nil {
		return LayerInfo{}, err
	}
	var info LayerInfo
	if err := readJSON(filepath.Join(dir, "layer.json"), &info); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return LayerInfo{}, &NotFoundError{What: "layer " + chainID.String()}
		}
		return LayerInfo{}, fmt.Errorf("snapshot: layer %s: %w", chainID, err)
	}
	return info, nil
}

// HasLayer tells whether a layer is committed.
func (s *Snapshotter) HasLayer(chainID digest.Digest) bool {
	_, err := s.Layer(chainID)
	return err == nil
}

// Layers lists the chain IDs of all committed layers.
func (s *Snapshotter) Layers() ([]digest.Digest, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list layers: %w", err)
	}
	var out []digest.Digest
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// ApplyLayer commits a layer with chain ID chainID on top of parent (empty
// for a base layer) from the uncompressed tar stream r. The stream is
// extracted into a temp directory; verify (if not nil) is called after the
// whole stream was read and may veto the commit (a diff ID check). Only
// then is the layer synced and renamed into place. Applying a layer that
// exists already is a no-op that leaves r unread.
func (s *Snapshotter) ApplyLayer(chainID, parent digest.Digest, r io.Reader, opts ApplyOptions, verify func() error) (LayerInfo, error) {
	if _, err := s.layerDir(chainID); err != nil {
		return LayerInfo{}, err
	}
	if info, err := s.Layer(chainID); err == nil {
		return info, nil
	}
	return s.apply(parent, r, opts, func() (digest.Digest, error) {
		if verify != nil {
			if err := verify(); err != nil {
				return "", err
			}
		}
		return chainID, nil
	})
}

// ApplyNewLayer is ApplyLayer for a layer whose chain ID is known only
// once its stream has been read (docker import): id is called after the
// whole stream was extracted and returns the chain ID, or an error that
// vetoes the commit. If that layer exists already, the new copy is thrown
// away and the existing one returned.
func (s *Snapshotter) ApplyNewLayer(parent digest.Digest, r io.Reader, opts ApplyOptions, id func() (digest.Digest, error)) (LayerInfo, error) {
	return s.apply(parent, r, opts, id)
}

func (s *Snapshotter) apply(parent digest.Digest, r io.Reader, opts ApplyOptions, finish func() (digest.Digest, error)) (LayerInfo, error) {
	return s.build(parent, func(tmp string) (int64, error) {
		// Reading to the end also makes the caller's digest cover the
		// whole stream.
		return applyRecorded(filepath.Join(tmp, "fs"), r, opts, filepath.Join(tmp, splitFile))
	}, finish)
}

// build makes a layer on top of parent: fill populates tmp/fs (and may
// add files beside it) and returns the layer's size, finish names the
// layer or vetoes it; then the layer is synced and renamed into place.
//
// The parent needs to be committed only once finish returns, so layers of
// one image can be extracted side by side while they download, each
// finish waiting for its parent's commit.
func (s *Snapshotter) build(parent digest.Digest, fill func(tmp string) (int64, error), finish func() (digest.Digest, error)) (LayerInfo, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: %w", err)
	}
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: %w", err)
	}
	size, err := fill(tmp)
	if err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: %w", err)
	}
	chainID, err := finish()
	if err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: %w", err)
	}
	if parent != "" && !s.HasLayer(parent) {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer: parent %s is not committed", parent)
	}
	final, err := s.layerDir(chainID)
	if err != nil {
		return LayerInfo{}, err
	}
	if err := syncFS(tmp); err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer %s: %w", chainID, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if info, err := s.Layer(chainID); err == nil {
		return info, nil // committed meanwhile by someone else
	}
	// The link is durable before the layer becomes visible.
	link, err := s.claimLink(filepath.Join("..", "layers", chainID.Encoded(), "fs"))
	if err != nil {
		return LayerInfo{}, fmt.Errorf("snapshot: link layer %s: %w", chainID, err)
	}
	linkPath := filepath.Join(s.root, "l", link)
	info := LayerInfo{ChainID: chainID, Parent: parent, Link: link, Size: size}
	if err := writeJSON(filepath.Join(tmp, "layer.json"), info); err != nil {
		os.Remove(linkPath)
		return LayerInfo{}, fmt.Errorf("snapshot: apply layer %s: %w", chainID, err)
	}
	if err := syncDir(tmp); err != nil {
		os.Remove(linkPath)
		return LayerInfo{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(linkPath)
		return LayerInfo{}, fmt.Errorf("snapshot: commit layer %s: %w", chainID, err)
	}
	if err := syncDir(filepath.Join(s.root, "layers")); err != nil {
		return LayerInfo{}, err
	}
	return info, nil
}

// RemoveLayer deletes a committed layer. The caller makes sure nothing
// (image or container layer) still builds on it.
func (s *Snapshotter) RemoveLayer(chainID digest.Digest) error {
	info, err := s.Layer(chainID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, _ := s.layerDir(chainID)
	trash, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "rm-")
	if err != nil {
		return fmt.Errorf("snapshot: remove layer %s: %w", chainID, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, "layer")); err != nil {
		return fmt.Errorf("snapshot: remove layer %s: %w", chainID, err)
	}
	if err := syncDir(filepath.Join(s.root, "layers")); err != nil {
		return err
	}
	os.Remove(filepath.Join(s.root, "l", info.Link))
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("snapshot: remove layer %s: %w", chainID, err)
	}
	return nil
}

// Chain returns the layers from chainID down to the base, top first.
func (s *Snapshotter) Chain(chainID digest.Digest) ([]LayerInfo, error) {
	var out []LayerInfo
	for id := chainID; id != ""; {
		info, err := s.Layer(id)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
		id = info.Parent
		if len(out) > 1000 {
			return nil, fmt.Errorf("snapshot: layer chain of %s is too deep", chainID)
		}
	}
	return out, nil
}

// Prepare creates the writable layer key on top of parent (a committed
// chain ID, or empty for an empty rootfs) and returns its mounts.
func (s *Snapshotter) Prepare(key string, parent digest.Digest) ([]Mount, error) {
	final, err := s.containerDir(key)
	if err != nil {
		return nil, err
	}
	if parent != "" {
		if _, err := s.Chain(parent); err != nil {
			return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(final); err == nil {
		return nil, &existsError{key: key}
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "ctr-")
	if err != nil {
		return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
		}
	}
	link, err := s.claimLink(filepath.Join("..", "containers", key))
	if err != nil {
		return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	m := containerMeta{Key: key, Parent: parent, Link: link}
	ok := false
	defer func() {
		if !ok {
			os.Remove(filepath.Join(s.root, "l", link))
		}
	}()
	if err := writeJSON(filepath.Join(tmp, "container.json"), m); err != nil {
		return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	ok = true
	if err := syncDir(filepath.Join(s.root, "containers")); err != nil {
		return nil, err
	}
	return s.mounts(m)
}

type existsError struct{ key string }

func (e *existsError) Error() string { return "snapshot: container layer " + e.key + " already exists" }
func (e *existsError) Conflict()     {}

func (s *Snapshotter) container(key string) (containerMeta, error) {
	dir, err := s.containerDir(key)
	if err != nil {
		return containerMeta{}, err
	}
	var m containerMeta
	if err := readJSON(filepath.Join(dir, "container.json"), &m); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return containerMeta{}, &NotFoundError{What: "container layer " + key}
		}
		return containerMeta{}, fmt.Errorf("snapshot: container layer %s: %w", key, err)
	}
	return m, nil
}

// Mounts returns the mounts of an existing container layer.
func (s *Snapshotter) Mounts(key string) ([]Mount, error) {
	m, err := s.container(key)
	if err != nil {
		return nil, err
	}
	return s.mounts(m)
}

// maxMountData is the kernel's limit on mount(2) option data (one page,
// including the terminating NUL).
var maxMountData = os.Getpagesize() - 1

func (s *Snapshotter) mounts(m containerMeta) ([]Mount, error) {
	key, parent := m.Key, m.Parent
	dir, _ := s.containerDir(key)
	if m.Link != "" {
		dir = filepath.Join(s.root, "l", m.Link)
	}
	var lowers []string
	if parent == "" {
		lowers = []string{filepath.Join(s.root, "empty")}
	} else {
		chain, err := s.Chain(parent)
		if err != nil {
			return nil, fmt.Errorf("snapshot: mounts of %s: %w", key, err)
		}
		for _, l := range chain {
			lowers = append(lowers, filepath.Join(s.root, "l", l.Link))
		}
	}
	opts := []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
		"index=off",
	}
	if n := len(strings.Join(opts, ",")); n > maxMountData {
		return nil, fmt.Errorf("snapshot: mounts of %s: overlay options are %d bytes for %d layers, over the kernel limit of %d", key, n, len(lowers), maxMountData)
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

// Remove deletes a container's writable layer.
func (s *Snapshotter) Remove(key string) error {
	dir, err := s.containerDir(key)
	if err != nil {
		return err
	}
	m, err := s.container(key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	trash, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "rm-")
	if err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", key, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, "c")); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", key, err)
	}
	if err := syncDir(filepath.Join(s.root, "containers")); err != nil {
		return err
	}
	if m.Link != "" {
		os.Remove(filepath.Join(s.root, "l", m.Link))
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", key, err)
	}
	return nil
}

// Containers returns every container layer's key and parent chain ID, so
// that callers keep the layers they build on.
func (s *Snapshotter) Containers() (map[string]digest.Digest, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("snapshot: list container layers: %w", err)
	}
	out := map[string]digest.Digest{}
	for _, e := range entries {
		m, err := s.container(e.Name())
		if err != nil {
			continue
		}
		out[m.Key] = m.Parent
	}
	return out, nil
}

// Usage returns the disk usage of a container layer's own changes and of
// the layers below it.
func (s *Snapshotter) Usage(key string) (rw, lower int64, err error) {
	m, err := s.container(key)
	if err != nil {
		return 0, 0, err
	}
	dir, _ := s.containerDir(key)
	rw, err = DiskUsage(filepath.Join(dir, "upper"))
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: usage of %s: %w", key, err)
	}
	if m.Parent != "" {
		chain, err := s.Chain(m.Parent)
		if err != nil {
			return 0, 0, fmt.Errorf("snapshot: usage of %s: %w", key, err)
		}
		for _, l := range chain {
			lower += l.Size
		}
	}
	return rw, lower, nil
}

// DiskUsage sums the sizes of the regular files and symlinks under dir,
// counting hard links once.
func DiskUsage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
}

var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// linkLen is the length of the names in l/. Four base32 characters (a
// million names, a collision just means another draw) keep the overlay
// options of a 125-layer image under the page-size limit of mount(2):
// every layer costs len(root)+8 bytes of lowerdir.
const linkLen = 4

// claimLink makes a new short symlink in l/ pointing at target (relative
// to l/), makes it durable and returns its name. The caller holds s.mu.
func (s *Snapshotter) claimLink(target string) (string, error) {
	for range 1000 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random link name: %w", err)
		}
		link := linkEncoding.EncodeToString(b[:])[:linkLen]
		err := os.Symlink(target, filepath.Join(s.root, "l", link))
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := syncDir(filepath.Join(s.root, "l")); err != nil {
			os.Remove(filepath.Join(s.root, "l", link))
			return "", err
		}
		return link, nil
	}
	return "", errors.New("no free link name")
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("snapshot: sync directory %s: %w", dir, err)
	}
	return nil
}

// syncFS flushes the filesystem holding dir, so that an extracted layer is
// on disk before it is renamed into place.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
