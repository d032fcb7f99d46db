//go:build linux

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/berthdesktop/berth/guestagent/registry"
	digest "github.com/opencontainers/go-digest"
)

// maxBlobsPerLayer bounds how many registry blobs are remembered per
// layer.
const maxBlobsPerLayer = 8

// distStore remembers, per diff ID, blobs of that layer known to be in
// registry repositories (pulled from or pushed there), so that a push
// skips or mounts them instead of uploading. It is a hint: losing it
// costs an upload, never correctness, so it is written with rename but
// without syncing.
type distStore struct {
	path string
	mu   sync.Mutex
	m    map[digest.Digest][]registry.Blob
}

func openDistStore(path string) (*distStore, error) {
	d := &distStore{path: path, m: map[digest.Digest][]registry.Blob{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &d.m); err != nil {
		// A damaged hint file is dropped, not fatal.
		d.m = map[digest.Digest][]registry.Blob{}
	}
	return d, nil
}

func (d *distStore) add(diffID digest.Digest, b registry.Blob) {
	list := slices.DeleteFunc(d.m[diffID], func(o registry.Blob) bool {
		return o.Host == b.Host && o.Repository == b.Repository && o.Digest == b.Digest
	})
	list = append([]registry.Blob{b}, list...)
	if len(list) > maxBlobsPerLayer {
		list = list[:maxBlobsPerLayer]
	}
	d.m[diffID] = list
}

func (d *distStore) save() error {
	b, err := json.Marshal(d.m)
	if err != nil {
		return err
	}
	tmp := d.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(d.path))
}

// rememberBlobs records that blobs[i] holds layer diffIDs[i].
// Hints of layers no image has any more are dropped.
func (s *Store) rememberBlobs(diffIDs []digest.Digest, blobs []registry.Blob) {
	live := map[digest.Digest]bool{}
	s.mu.Lock()
	for _, r := range s.ix.Images {
		for _, d := range r.DiffIDs {
			live[d] = true
		}
	}
	s.mu.Unlock()
	s.dist.mu.Lock()
	defer s.dist.mu.Unlock()
	for d := range s.dist.m {
		if !live[d] {
			delete(s.dist.m, d)
		}
	}
	for i, b := range blobs {
		if i < len(diffIDs) {
			s.dist.add(diffIDs[i], b)
		}
	}
	if err := s.dist.save(); err != nil {
		s.log.Warn("saving registry blob hints", "err", err)
	}
}

// knownBlobs returns the blobs remembered for a layer.
func (s *Store) knownBlobs(diffID digest.Digest) []registry.Blob {
	s.dist.mu.Lock()
	defer s.dist.mu.Unlock()
	return slices.Clone(s.dist.m[diffID])
}
