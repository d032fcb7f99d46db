//go:build linux

// Package image owns the engine's images: the index of image configs and
// manifests, names and tags, layer application with whiteouts into the
// snapshotter, docker load (docker-save tarballs and OCI layouts), docker
// import, deletion with shared layers kept, and the image side of the
// Docker Engine API (it implements api.ImageBackend).
//
// Wiring, in the engine's main:
//
//	images, err := image.Open(filepath.Join(dataRoot, "image"))
//	// the engine resolves images and prepares rootfs through it and tells
//	// it which containers use which image:
//	images.SetContainerUsage(func(id digest.Digest) []image.ContainerUse { ... })
//	// and the API server takes it as its api.ImageBackend.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/berthdesktop/berth/guestagent/content"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
)

// Image is what the engine needs to know of an image to create a container.
type Image struct {
	ID       digest.Digest // digest of the config blob
	RepoTags []string
	// Config is the image config (OCI with Docker's extensions:
	// Healthcheck, OnBuild, Shell).
	Config dockerspec.DockerOCIImage
}

// Mount is one mount of a container's rootfs.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// ContainerUse is one container using an image.
type ContainerUse struct {
	ID      string
	Running bool
}

// Options tune a Store.
type Options struct {
	// AllowDevices lets loaded and imported layers create device nodes.
	// Off by default: such layers are refused, naming the entry.
	AllowDevices bool
	// Logger receives the store's log; slog.Default() when nil.
	Logger *slog.Logger
	// Registry pulls and pushes; without it pull and push answer 503.
	Registry *registry.Client
}

// Store is the image store. Its directory holds content/ (config blobs),
// ov/ (the snapshotter's layers and container layers; a short name keeps
// overlay mount options small), index.json
// (images and names) and tmp/ (archives being loaded).
type Store struct {
	root    string
	content *content.Store
	snap    *snapshot.Snapshotter
	opts    Options
	log     *slog.Logger

	mu      sync.Mutex // guards ix, configs, usage
	ix      *index
	configs map[digest.Digest]*dockerspec.DockerOCIImage
	usage   func(imageID digest.Digest) []ContainerUse
	// inflight counts layers being loaded or imported that no image
	// names yet, so that removal does not collect them.
	inflight map[digest.Digest]int
	sink     func(events.Message)

	// fetching holds the layers (by chain ID) pulls are applying, so
	// that concurrent pulls fetch each once.
	fetchMu  sync.Mutex
	fetching map[digest.Digest]*layerFetch
	dist     *distStore
}

// Open opens (creating if needed) the image store under root.
func Open(root string) (*Store, error) { return OpenWith(root, Options{}) }

// OpenWith opens the image store under root with options. It repairs what
// an interrupted engine may have left: names of missing images and images
// whose config or layers are missing are dropped, layers no image or
// container uses are removed, unfinished loads are thrown away.
func OpenWith(root string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("image store: create %s: %w", root, err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range left {
		os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
	}
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	sn, err := snapshot.Open(filepath.Join(root, "ov"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	ix, err := loadIndex(filepath.Join(root, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{root: root, content: cs, snap: sn, opts: opts, log: log, ix: ix, configs: map[digest.Digest]*dockerspec.DockerOCIImage{}, inflight: map[digest.Digest]int{}, fetching: map[digest.Digest]*layerFetch{}}
	if s.dist, err = openDistStore(filepath.Join(root, "distribution.json")); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := s.repair(); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return s, nil
}

func (s *Store) repair() error {
	changed := false
	for id, r := range s.ix.Images {
		_, cerr := s.content.Info(id)
		layersOK := true
		if r.ChainID != "" {
			chain, err := s.snap.Chain(r.ChainID)
			layersOK = err == nil && len(chain) == len(r.DiffIDs)
		}
		if cerr != nil || !layersOK {
			s.log.Warn("dropping image with missing content", "image", id, "config", cerr, "layersComplete", layersOK)
			delete(s.ix.Images, id)
			changed = true
		}
	}
	for ref, id := range s.ix.Refs {
		if s.ix.Images[id] == nil {
			delete(s.ix.Refs, ref)
			changed = true
		}
	}
	if changed {
		if err := s.ix.save(s.indexPath()); err != nil {
			return err
		}
	}
	_, err := s.gcLayers()
	return err
}

func (s *Store) indexPath() string { return filepath.Join(s.root, "index.json") }

// commitIndex saves next and makes it current; the caller holds s.mu.
func (s *Store) commitIndex(next *index) error {
	if err := next.save(s.indexPath()); err != nil {
		return err
	}
	s.ix = next
	return nil
}

// chainIDs returns the chain IDs of a stack of diff IDs, base first.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// gcLayers removes committed layers that no image and no container layer
// builds on, top layers first, and returns their chain IDs. The caller
// holds s.mu (or is Open).
func (s *Store) gcLayers() ([]digest.Digest, error) {
	keep := map[digest.Digest]bool{}
	for c := range s.inflight {
		keep[c] = true
	}
	for _, r := range s.ix.Images {
		for _, c := range chainIDs(r.DiffIDs) {
			keep[c] = true
		}
	}
	ctrs, err := s.snap.Containers()
	if err != nil {
		return nil, err
	}
	for _, parent := range ctrs {
		if parent == "" {
			continue
		}
		chain, err := s.snap.Chain(parent)
		if err != nil {
			continue
		}
		for _, l := range chain {
			keep[l.ChainID] = true
		}
	}
	all, err := s.snap.Layers()
	if err != nil {
		return nil, err
	}
	// Remove children before parents: order by depth, deepest first.
	depth := map[digest.Digest]int{}
	var doomed []digest.Digest
	for _, id := range all {
		if keep[id] {
			continue
		}
		chain, err := s.snap.Chain(id)
		if err != nil {
			depth[id] = 0
		} else {
			depth[id] = len(chain)
		}
		doomed = append(doomed, id)
	}
	sort.Slice(doomed, func(i, j int) bool { return depth[doomed[i]] > depth[doomed[j]] })
	var removed []digest.Digest
	for _, id := range doomed {
		if err := s.snap.RemoveLayer(id); err != nil {
			return removed, fmt.Errorf("remove unused layer %s: %w", id, err)
		}
		removed = append(removed, id)
	}
	return removed, nil
}

// config returns an image's parsed config; the caller holds s.mu.
func (s *Store) config(id digest.Digest) (*dockerspec.DockerOCIImage, error) {
	if c := s.configs[id]; c != nil {
		return c, nil
	}
	b, err := s.content.ReadAll(id)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", shortID(id.String()), err)
	}
	var c dockerspec.DockerOCIImage
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("image %s: parse config: %w", shortID(id.String()), err)
	}
	s.configs[id] = &c
	return &c, nil
}

var hexPrefix = regexp.MustCompile(`^[a-f0-9]{1,64}$`)

// lookup finds the image refOrID names, as dockerd does: a full ID, a
// name (with the default tag), name@digest, or a unique ID prefix. The
// caller holds s.mu.
func (s *Store) lookup(refOrID string) (digest.Digest, error) {
	ref, err := reference.ParseAnyReference(refOrID)
	if err != nil {
		if id, ok := s.searchID(refOrID); ok {
			return id, nil
		}
		return "", &invalidError{err: err}
	}
	named, isNamed := ref.(reference.Named)
	if !isNamed {
		if d, ok := ref.(reference.Digested); ok && s.ix.Images[d.Digest()] != nil {
			return d.Digest(), nil
		}
		return "", noSuchImage(refOrID)
	}
	if id, ok := s.ix.Refs[reference.TagNameOnly(named).String()]; ok {
		return id, nil
	}
	if d, ok := named.(reference.Digested); ok {
		// name@<image ID> also names the image.
		if s.ix.Images[d.Digest()] != nil {
			for _, r := range s.ix.refsOf(d.Digest()) {
				if p, err := reference.ParseNormalizedNamed(r); err == nil && p.Name() == named.Name() {
					return d.Digest(), nil
				}
			}
		}
	}
	if id, ok := s.searchID(refOrID); ok {
		return id, nil
	}
	return "", noSuchImage(refOrID)
}

// searchID finds the one image whose ID starts with prefix.
func (s *Store) searchID(prefix string) (digest.Digest, bool) {
	prefix = strings.TrimPrefix(prefix, "sha256:")
	if !hexPrefix.MatchString(prefix) {
		return "", false
	}
	var found digest.Digest
	for id := range s.ix.Images {
		if strings.HasPrefix(id.Encoded(), prefix) {
			if found != "" {
				return "", false
			}
			found = id
		}
	}
	return found, found != ""
}

// familiarRefs splits an image's references into familiar tags and
// digests, sorted.
func (s *Store) familiarRefs(id digest.Digest) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, r := range s.ix.refsOf(id) {
		p, err := reference.ParseNormalizedNamed(r)
		if err != nil {
			continue
		}
		if _, ok := p.(reference.Canonical); ok {
			digests = append(digests, reference.FamiliarString(p))
		} else {
			tags = append(tags, reference.FamiliarString(p))
		}
	}
	slices.Sort(tags)
	slices.Sort(digests)
	return tags, digests
}

// Resolve finds an image by name[:tag], name@digest, full or short ID (with
// or without "sha256:"). A miss is an error with NotFound() whose message is
// dockerd's: "No such image: NAME".
func (s *Store) Resolve(ref string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	cfg, err := s.config(id)
	if err != nil {
		return nil, err
	}
	tags, _ := s.familiarRefs(id)
	return &Image{ID: id, RepoTags: tags, Config: *cfg}, nil
}

func toMounts(ms []snapshot.Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = Mount{Type: m.Type, Source: m.Source, Options: m.Options}
	}
	return out
}

// PrepareRootfs creates a fresh writable layer for container key on top of
// the image's layers and returns the mounts that make up its rootfs.
func (s *Store) PrepareRootfs(key string, imageID digest.Digest) ([]Mount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ix.Images[imageID]
	if r == nil {
		return nil, noSuchImage(imageID.String())
	}
	ms, err := s.snap.Prepare(key, r.ChainID)
	if err != nil {
		return nil, fmt.Errorf("prepare rootfs of %s: %w", key, err)
	}
	return toMounts(ms), nil
}

// RootfsMounts returns the mounts of an existing container layer (after an
// engine restart).
func (s *Store) RootfsMounts(key string) ([]Mount, error) {
	ms, err := s.snap.Mounts(key)
	if err != nil {
		return nil, fmt.Errorf("rootfs of %s: %w", key, err)
	}
	return toMounts(ms), nil
}

// RootfsSize returns the size of the container layer's own changes and of
// the whole rootfs (docker ps -s).
func (s *Store) RootfsSize(key string) (rw, total int64, err error) {
	rw, lower, err := s.snap.Usage(key)
	if err != nil {
		return 0, 0, fmt.Errorf("rootfs size of %s: %w", key, err)
	}
	return rw, rw + lower, nil
}

// RemoveRootfs deletes the container's writable layer. Layers that only
// it kept (its image was force-removed meanwhile) go with it.
func (s *Store) RemoveRootfs(key string) error {
	if err := s.snap.Remove(key); err != nil {
		var nf interface{ NotFound() }
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("remove rootfs of %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.gcLayers(); err != nil {
		s.log.Warn("removing unused layers", "err", err)
	}
	return nil
}

// SetUsage tells the store which images containers use, so that rmi refuses
// (409, dockerd's message) unless forced. Containers named this way count
// as stopped; SetContainerUsage also tells which run.
func (s *Store) SetUsage(inUse func(imageID digest.Digest) (containerIDs []string)) {
	s.SetContainerUsage(func(id digest.Digest) []ContainerUse {
		var out []ContainerUse
		for _, c := range inUse(id) {
			out = append(out, ContainerUse{ID: c})
		}
		return out
	})
}

// SetContainerUsage tells the store which containers use an image and
// whether they run: rmi of an image a running container uses cannot be
// forced; one only stopped containers use can.
func (s *Store) SetContainerUsage(inUse func(imageID digest.Digest) []ContainerUse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage = inUse
}

func (s *Store) usedBy(id digest.Digest) []ContainerUse {
	if s.usage == nil {
		return nil
	}
	return s.usage(id)
}

// layerSizes returns the size of each layer of an image, base first.
func (s *Store) layerSizes(r *record) []int64 {
	out := make([]int64, len(r.DiffIDs))
	for i, c := range chainIDs(r.DiffIDs) {
		if info, err := s.snap.Layer(c); err == nil {
			out[i] = info.Size
		}
	}
	return out
}

func (s *Store) imageSize(r *record) int64 {
	var n int64
	for _, v := range s.layerSizes(r) {
		n += v
	}
	return n
}

// hold protects layers from collection until release is called.
func (s *Store) hold(chains []digest.Digest) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chains {
		s.inflight[c]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range chains {
			if s.inflight[c]--; s.inflight[c] <= 0 {
				delete(s.inflight, c)
			}
		}
	}
}

func (s *Store) applyOptions() snapshot.ApplyOptions {
	return snapshot.ApplyOptions{AllowDevices: s.opts.AllowDevices}
}
