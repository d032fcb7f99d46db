//go:build linux

package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of manifests and indexes in OCI layouts (Docker's
// equivalents included).
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	annotationContainerName = "io.containerd.image.name"
)

// maxMetadataSize bounds the manifests, indexes and configs read from an
// archive.
const maxMetadataSize = 32 << 20

// layerSource is one layer of an image in an archive.
type layerSource struct {
	path   string        // inside the archive
	digest digest.Digest // of the (possibly compressed) file, when known
}

// loadTarget is one image found in an archive.
type loadTarget struct {
	configPath   string
	configDigest digest.Digest // expected, when the archive names it
	layers       []layerSource
	refs         []reference.Named
	// repoDigest is the digest of the manifest (or index) the archive's
	// index.json names the image by; with refs it gives name@digest.
	repoDigest digest.Digest
}

// dockerManifestEntry is one entry of a docker-save manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// parseDockerManifest reads a docker-save manifest.json.
func parseDockerManifest(b []byte) ([]loadTarget, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, invalidf("invalid manifest.json: %w", err)
	}
	var out []loadTarget
	for i, e := range entries {
		if e.Config == "" {
			return nil, invalidf("invalid manifest.json: entry %d has no Config", i)
		}
		t := loadTarget{configPath: e.Config, configDigest: digestFromPath(e.Config)}
		for _, l := range e.Layers {
			if l == "" {
				return nil, invalidf("invalid manifest.json: entry %d has an empty layer path", i)
			}
			t.layers = append(t.layers, layerSource{path: l, digest: digestFromPath(l)})
		}
		for _, rt := range e.RepoTags {
			ref, err := reference.ParseNormalizedNamed(rt)
			if err != nil {
				return nil, invalidf("invalid tag %q in manifest.json: %w", rt, err)
			}
			if _, ok := ref.(reference.NamedTagged); !ok {
				return nil, invalidf("invalid tag %q in manifest.json", rt)
			}
			t.refs = append(t.refs, ref)
		}
		out = append(out, t)
	}
	return out, nil
}

// digestFromPath recognises blobs/sha256/<hex> paths, whose content must
// hash to their name. Other paths ("<hex>/layer.tar") carry no promise.
func digestFromPath(p string) digest.Digest {
	p = path.Clean(p)
	dir, hex := path.Split(p)
	if dir != "blobs/sha256/" {
		return ""
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if d.Validate() != nil {
		return ""
	}
	return d
}

func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", invalidf("invalid digest %q: %w", d, err)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// ociNames returns the names an OCI index descriptor gives its image.
func ociNames(desc ocispec.Descriptor) []reference.Named {
	if n := desc.Annotations[annotationContainerName]; n != "" {
		if ref, err := reference.ParseNormalizedNamed(n); err == nil {
			return []reference.Named{reference.TagNameOnly(ref)}
		}
	}
	// A bare tag ("latest") names no repository, so it names nothing here.
	if n := desc.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(n, ":/@") {
		if ref, err := reference.ParseNormalizedNamed(n); err == nil {
			return []reference.Named{reference.TagNameOnly(ref)}
		}
	}
	return nil
}

// parseOCIIndex reads an OCI index (index.json or a nested index blob).
func parseOCIIndex(b []byte) (*ocispec.Index, error) {
	var ix ocispec.Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, invalidf("invalid OCI index: %w", err)
	}
	for _, d := range ix.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, invalidf("invalid OCI index: descriptor digest %q: %w", d.Digest, err)
		}
	}
	return &ix, nil
}

// parseOCIManifest reads an image manifest.
func parseOCIManifest(b []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, invalidf("invalid image manifest: %w", err)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, invalidf("invalid image manifest: config digest %q: %w", m.Config.Digest, err)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, invalidf("invalid image manifest: layer digest %q: %w", l.Digest, err)
		}
	}
	return &m, nil
}

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerList
}

func platformMatches(p *ocispec.Platform) bool {
	return p == nil || (p.OS == "linux" && p.Architecture == goruntime.GOARCH)
}

// ociTargets walks an OCI layout from index.json to the image manifests
// for this platform.
func ociTargets(root *os.Root, ix *ocispec.Index) ([]loadTarget, error) {
	var out []loadTarget
	var walk func(desc ocispec.Descriptor, names []reference.Named, repoDigest digest.Digest, depth int) error
	walk = func(desc ocispec.Descriptor, names []reference.Named, repoDigest digest.Digest, depth int) error {
		if depth > 4 {
			return invalidf("OCI index nested too deeply")
		}
		b, err := readVerified(root, desc.Digest)
		if err != nil {
			return err
		}
		mt := desc.MediaType
		if mt == "" {
			var probe struct {
				MediaType string          `json:"mediaType"`
				Manifests json.RawMessage `json:"manifests"`
			}
			json.Unmarshal(b, &probe)
			mt = probe.MediaType
			if mt == "" && probe.Manifests != nil {
				mt = ocispec.MediaTypeImageIndex
			}
		}
		if isIndexType(mt) {
			child, err := parseOCIIndex(b)
			if err != nil {
				return err
			}
			var picked *ocispec.Descriptor
			for i, d := range child.Manifests {
				if d.Platform != nil && platformMatches(d.Platform) {
					picked = &child.Manifests[i]
					break
				}
			}
			if picked == nil {
				return &notFoundError{ref: fmt.Sprintf("no manifest for linux/%s in the archive's image index %s", goruntime.GOARCH, desc.Digest)}
			}
			return walk(*picked, names, repoDigest, depth+1)
		}
		m, err := parseOCIManifest(b)
		if err != nil {
			return err
		}
		cp, err := blobPath(m.Config.Digest)
		if err != nil {
			return err
		}
		t := loadTarget{configPath: cp, configDigest: m.Config.Digest, refs: names, repoDigest: repoDigest}
		for _, l := range m.Layers {
			lp, err := blobPath(l.Digest)
			if err != nil {
				return err
			}
			t.layers = append(t.layers, layerSource{path: lp, digest: l.Digest})
		}
		out = append(out, t)
		return nil
	}
	for _, d := range ix.Manifests {
		if !isIndexType(d.MediaType) && d.Platform != nil && !platformMatches(d.Platform) {
			continue
		}
		if err := walk(d, ociNames(d), d.Digest, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readVerified reads a small blob of the archive and checks its digest.
func readVerified(root *os.Root, d digest.Digest) ([]byte, error) {
	p, err := blobPath(d)
	if err != nil {
		return nil, err
	}
	b, err := readLimited(root, p)
	if err != nil {
		return nil, err
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
		return nil, invalidf("archive blob %s does not match its digest", d)
	}
	return b, nil
}

func readLimited(root *os.Root, p string) ([]byte, error) {
	f, err := root.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, invalidf("archive has no %s", p)
		}
		return nil, invalidf("archive file %s: %w", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read archive file %s: %w", p, err)
	}
	if len(b) > maxMetadataSize {
		return nil, invalidf("archive file %s is too large", p)
	}
	return b, nil
}

// spool unpacks a load archive into dir: directories, regular files,
// symlinks and hard links, every path through an os.Root so that nothing
// lands outside dir (symlinks are only ever followed inside it later).
func spool(ctx context.Context, dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open load directory: %w", err)
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalidf("read archive: %w", err)
		}
		rel, err := snapshot.CleanEntryPath(hdr.Name)
		if err != nil {
			return invalidf("archive entry %q: %w", hdr.Name, err)
		}
		if rel == "" {
			continue
		}
		if d := path.Dir(rel); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return invalidf("archive entry %q: %w", hdr.Name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(rel, 0o700); err != nil {
				return invalidf("archive entry %q: %w", hdr.Name, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			root.Remove(rel)
			f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return invalidf("archive entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			root.Remove(rel)
			if err := root.Symlink(hdr.Linkname, rel); err != nil {
				return invalidf("archive entry %q: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := snapshot.CleanEntryPath(hdr.Linkname)
			if err != nil || target == "" {
				return invalidf("archive entry %q: hard link target %q leaves the archive", hdr.Name, hdr.Linkname)
			}
			root.Remove(rel)
			if err := root.Link(target, rel); err != nil {
				return invalidf("archive entry %q: %w", hdr.Name, err)
			}
		default:
			// Nothing else belongs in an image archive.
		}
	}
}

// ImageLoad serves POST /images/load: a docker-save archive (manifest.json
// with configs and layer tars, or the OCI layout docker save writes since
// v25) or a plain OCI layout, possibly compressed, with any number of
// images. It writes dockerd's JSON messages: "Loaded image: NAME" per name,
// "Loaded image ID: ID" for an image without one.
func (s *Store) ImageLoad(ctx context.Context, in io.Reader, quiet bool, out io.Writer) error {
	dec, err := snapshot.Decompress(in)
	if err != nil {
		return &invalidError{err: fmt.Errorf("load archive: %w", err)}
	}
	defer dec.Close()
	dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "load-")
	if err != nil {
		return fmt.Errorf("load archive: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := spool(ctx, dir, dec); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("load archive: %w", err)
	}
	defer root.Close()

	var targets []loadTarget
	if b, err := readLimited(root, "manifest.json"); err == nil {
		if targets, err = parseDockerManifest(b); err != nil {
			return err
		}
	} else if b, err2 := readLimited(root, ocispec.ImageIndexFile); err2 == nil {
		ix, err := parseOCIIndex(b)
		if err != nil {
			return err
		}
		if targets, err = ociTargets(root, ix); err != nil {
			return err
		}
	} else {
		return invalidf("invalid archive: it has neither manifest.json nor index.json")
	}
	enc := json.NewEncoder(out)
	for _, t := range targets {
		id, err := s.loadOne(ctx, root, t)
		if err != nil {
			return err
		}
		if err := s.nameLoaded(id, t.refs, t.repoDigest, quiet, enc); err != nil {
			return err
		}
	}
	return nil
}

// loadOne applies an image's missing layers, stores its config and adds
// it to the index.
func (s *Store) loadOne(ctx context.Context, root *os.Root, t loadTarget) (digest.Digest, error) {
	cfgBytes, err := readLimited(root, t.configPath)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(cfgBytes)
	if t.configDigest != "" && t.configDigest != id {
		return "", invalidf("image config %s does not match its digest %s", t.configPath, t.configDigest)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return "", invalidf("invalid image config %s: %w", t.configPath, err)
	}
	if cfg.RootFS.Type != "layers" {
		return "", invalidf("image config %s: unsupported rootfs type %q", t.configPath, cfg.RootFS.Type)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(t.layers) {
		return "", invalidf("image config %s lists %d layers, the archive %d", t.configPath, len(diffIDs), len(t.layers))
	}
	for _, d := range diffIDs {
		if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
			return "", invalidf("image config %s: invalid diff ID %q", t.configPath, d)
		}
	}
	chains := chainIDs(diffIDs)
	defer s.hold(chains)()
	for i, l := range t.layers {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if s.snap.HasLayer(chains[i]) {
			continue // already here: not applied again
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		// The same diff on another parent: its files are here already.
		if from, release := s.layerWithDiff(diffIDs[i]); from != "" {
			_, err := s.snap.CloneLayer(chains[i], parent, from)
			release()
			if err == nil {
				continue
			}
			s.log.Warn("cloning a present layer failed; applying it", "layer", diffIDs[i], "err", err)
		}
		if err := s.applyFile(root, l, chains[i], parent, diffIDs[i]); err != nil {
			return "", err
		}
	}
	if _, err := s.content.Ingest(ctx, strings.NewReader(string(cfgBytes)), id, int64(len(cfgBytes))); err != nil {
		return "", fmt.Errorf("store image config: %w", err)
	}
	var top digest.Digest
	if len(chains) > 0 {
		top = chains[len(chains)-1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ix.Images[id] == nil {
		next := s.ix.clone()
		next.Images[id] = &record{ID: id, ChainID: top, DiffIDs: diffIDs}
		if err := s.commitIndex(next); err != nil {
			return "", err
		}
	}
	return id, nil
}

// applyFile applies one layer file of an archive, checking the file's
// digest (when known) and the uncompressed stream's diff ID.
func (s *Store) applyFile(root *os.Root, l layerSource, chain, parent, diffID digest.Digest) error {
	f, err := root.Open(l.path)
	if err != nil {
		return invalidf("archive has no layer %s: %w", l.path, err)
	}
	defer f.Close()
	var raw io.Reader = f
	var rawHash hash.Hash
	if l.digest != "" && l.digest.Algorithm() == digest.SHA256 {
		rawHash = sha256.New()
		raw = io.TeeReader(f, rawHash)
	}
	dec, err := snapshot.Decompress(raw)
	if err != nil {
		return invalidf("layer %s: %w", l.path, err)
	}
	defer dec.Close()
	diffHash := sha256.New()
	verify := func() error {
		if got := digest.NewDigest(digest.SHA256, diffHash); got != diffID {
			return invalidf("layer %s: content has diff ID %s, the image config says %s", l.path, got, diffID)
		}
		if rawHash != nil {
			if _, err := io.Copy(io.Discard, raw); err != nil {
				return fmt.Errorf("layer %s: %w", l.path, err)
			}
			if got := digest.NewDigest(digest.SHA256, rawHash); got != l.digest {
				return invalidf("layer %s does not match its digest %s", l.path, l.digest)
			}
		}
		return nil
	}
	_, err = s.snap.ApplyLayer(chain, parent, io.TeeReader(dec, diffHash), snapshot.ApplyOptions{AllowDevices: s.opts.AllowDevices}, verify)
	if err != nil {
		return fmt.Errorf("load layer %s: %w", l.path, err)
	}
	return nil
}

// nameLoaded points refs at a loaded image and reports it.
func (s *Store) nameLoaded(id digest.Digest, refs []reference.Named, repoDigest digest.Digest, quiet bool, enc *json.Encoder) error {
	s.mu.Lock()
	next := s.ix.clone()
	var msgs []string
	for _, ref := range refs {
		key := ref.String()
		if prev, ok := next.Refs[key]; ok && prev != id && !quiet {
			msgs = append(msgs, fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string\n", reference.FamiliarString(ref), prev))
		}
		next.Refs[key] = id
		next.Images[id].LastTagTime = time.Now().UTC()
		if repoDigest != "" {
			if c, err := reference.WithDigest(reference.TrimNamed(ref), repoDigest); err == nil {
				next.Refs[c.String()] = id
			}
		}
		msgs = append(msgs, "Loaded image: "+reference.FamiliarString(ref)+"\n")
	}
	if len(refs) == 0 {
		msgs = append(msgs, "Loaded image ID: "+id.String()+"\n")
	}
	err := s.commitIndex(next)
	if err == nil {
		s.emit(events.ActionLoad, id, id.String())
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := enc.Encode(jsonstream.Message{Stream: m}); err != nil {
			return fmt.Errorf("write load progress: %w", err)
		}
	}
	return nil
}

// layerWithDiff finds a committed layer whose diff is diffID and holds it
// until release is called.
func (s *Store) layerWithDiff(diffID digest.Digest) (digest.Digest, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.ix.Images {
		for i, c := range chainIDs(r.DiffIDs) {
			if r.DiffIDs[i] == diffID && s.snap.HasLayer(c) {
				s.inflight[c]++
				return c, func() {
					s.mu.Lock()
					defer s.mu.Unlock()
					if s.inflight[c]--; s.inflight[c] <= 0 {
						delete(s.inflight, c)
					}
				}
			}
		}
	}
	return "", func() {}
}
