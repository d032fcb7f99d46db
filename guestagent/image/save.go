//go:build linux

package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// saveImage is one image to write, with the names to write it under.
type saveImage struct {
	id   digest.Digest
	refs []reference.NamedTagged
}

// ImageSave writes images as docker save does since v25 (for GET
// /images/get and /images/{name}/get): an OCI layout (oci-layout,
// index.json, blobs/sha256/*, layers as uncompressed tars) plus
// manifest.json. A repository name alone saves all its tags; a tag saves
// that tag; an ID saves the image without names. Layers are written byte
// for byte as they were loaded, so diff IDs and image IDs are kept.
func (s *Store) ImageSave(ctx context.Context, names []string, out io.Writer) error {
	images, err := s.saveSet(names)
	if err != nil {
		return err
	}
	type layerRef struct{ chain, diffID digest.Digest }
	type plan struct {
		saveImage
		config []byte
		layers []layerRef
	}
	var plans []plan
	s.mu.Lock()
	for _, im := range images {
		r := s.ix.Images[im.id]
		cfg, err := s.content.ReadAll(im.id)
		if r == nil || err != nil {
			s.mu.Unlock()
			return noSuchImage(im.id.String())
		}
		p := plan{saveImage: im, config: cfg}
		for i, c := range chainIDs(r.DiffIDs) {
			p.layers = append(p.layers, layerRef{chain: c, diffID: r.DiffIDs[i]})
		}
		plans = append(plans, p)
	}
	// The layers must outlive a concurrent rmi while they stream.
	var held []digest.Digest
	for _, p := range plans {
		for _, l := range p.layers {
			held = append(held, l.chain)
		}
	}
	s.mu.Unlock()
	defer s.hold(held)()

	tw := tar.NewWriter(out)
	epoch := time.Unix(0, 0)
	writeFile := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("save: %s: %w", name, err)
		}
		return nil
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	type manifestEntry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var dockerManifest []manifestEntry
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	index.SchemaVersion = 2
	for _, p := range plans {
		entry := manifestEntry{Config: "blobs/sha256/" + p.id.Encoded(), RepoTags: []string{}}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
		m.SchemaVersion = 2
		m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: p.id, Size: int64(len(p.config))}
		for _, l := range p.layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			rc, size, err := s.snap.LayerTar(l.chain, l.diffID)
			if err != nil {
				return fmt.Errorf("save %s: %w", shortID(p.id.String()), err)
			}
			name := "blobs/sha256/" + l.diffID.Encoded()
			if !written[l.diffID] {
				err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: size, ModTime: epoch})
				if err == nil {
					_, err = io.Copy(tw, rc)
				}
				written[l.diffID] = true
			}
			rc.Close()
			if err != nil {
				return fmt.Errorf("save %s: layer %s: %w", shortID(p.id.String()), l.diffID, err)
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.diffID, Size: size})
			entry.Layers = append(entry.Layers, name)
		}
		if !written[p.id] {
			if err := writeFile("blobs/sha256/"+p.id.Encoded(), p.config); err != nil {
				return err
			}
			written[p.id] = true
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("save: encode manifest: %w", err)
		}
		md := digest.FromBytes(mb)
		if !written[md] {
			if err := writeFile("blobs/sha256/"+md.Encoded(), mb); err != nil {
				return err
			}
			written[md] = true
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
		if len(p.refs) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, ref := range p.refs {
			d := desc
			d.Annotations = map[string]string{
				annotationContainerName:   ref.String(),
				ocispec.AnnotationRefName: ref.Tag(),
			}
			index.Manifests = append(index.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(ref))
		}
		dockerManifest = append(dockerManifest, entry)
	}
	ib, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("save: encode index.json: %w", err)
	}
	mb, err := json.Marshal(dockerManifest)
	if err != nil {
		return fmt.Errorf("save: encode manifest.json: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{ocispec.ImageIndexFile, ib},
		{"manifest.json", mb},
		{ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`)},
	} {
		if err := writeFile(f.name, f.b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	s.mu.Lock()
	for _, p := range plans {
		s.emit(events.ActionSave, p.id, p.id.String())
	}
	s.mu.Unlock()
	return nil
}

// saveSet resolves the names given to docker save.
func (s *Store) saveSet(names []string) ([]saveImage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []saveImage
	byID := map[digest.Digest]int{}
	add := func(id digest.Digest, ref reference.NamedTagged) {
		i, ok := byID[id]
		if !ok {
			i = len(out)
			byID[id] = i
			out = append(out, saveImage{id: id})
		}
		if ref != nil && !slices.ContainsFunc(out[i].refs, func(r reference.NamedTagged) bool { return r.String() == ref.String() }) {
			out[i].refs = append(out[i].refs, ref)
		}
	}
	for _, name := range names {
		if named, err := reference.ParseNormalizedNamed(name); err == nil && reference.IsNameOnly(named) && !strings.Contains(name, ":") {
			// A repository: all its tags.
			found := false
			for _, r := range parsedRefs(sortedKeys(s.ix.Refs)) {
				if t, ok := r.(reference.NamedTagged); ok && r.Name() == named.Name() {
					add(s.ix.Refs[r.String()], t)
					found = true
				}
			}
			if found {
				continue
			}
		}
		id, err := s.lookup(name)
		if err != nil {
			return nil, err
		}
		var tagged reference.NamedTagged
		if named, err := reference.ParseNormalizedNamed(name); err == nil && !isIDPrefix(id, name) {
			if t, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
				tagged = t
			}
		}
		add(id, tagged)
	}
	return out, nil
}

func sortedKeys(m map[string]digest.Digest) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
