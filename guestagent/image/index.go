//go:build linux

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// record is what the index keeps of one image besides its config blob.
type record struct {
	ID digest.Digest `json:"id"` // digest of the config blob
	// ChainID is the chain ID of the top layer ("" for an image without
	// layers); the snapshotter holds the chain below it.
	ChainID digest.Digest   `json:"chainID,omitempty"`
	DiffIDs []digest.Digest `json:"diffIDs"`
	// LastTagTime is when a name was last given to the image.
	LastTagTime time.Time `json:"lastTagTime,omitzero"`
	// Parent is the image this one was committed on (parents.go).
	Parent digest.Digest `json:"parent,omitempty"`
}

// index is the persistent list of images and the names pointing at them.
// It is rewritten whole on every change with write-temp, fsync, rename,
// fsync-dir, and only ever names content that was made durable first.
type index struct {
	Images map[digest.Digest]*record `json:"images"`
	// Refs maps a normalised reference (the full form with domain and
	// path, name:tag or name@digest) to an image ID.
	Refs map[string]digest.Digest `json:"refs"`
}

func newIndex() *index {
	return &index{Images: map[digest.Digest]*record{}, Refs: map[string]digest.Digest{}}
}

func loadIndex(path string) (*index, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	ix := newIndex()
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("parse image index %s: %w", path, err)
	}
	if ix.Images == nil {
		ix.Images = map[digest.Digest]*record{}
	}
	if ix.Refs == nil {
		ix.Refs = map[string]digest.Digest{}
	}
	return ix, nil
}

func (ix *index) save(path string) error {
	b, err := json.MarshalIndent(ix, "", " ")
	if err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write image index: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync image index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close image index: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("commit image index: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync image index directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync image index directory: %w", err)
	}
	return nil
}

// clone returns a deep copy, so that a change can be saved before it is
// made visible in memory.
func (ix *index) clone() *index {
	c := newIndex()
	for id, r := range ix.Images {
		rc := *r
		rc.DiffIDs = append([]digest.Digest(nil), r.DiffIDs...)
		c.Images[id] = &rc
	}
	for k, v := range ix.Refs {
		c.Refs[k] = v
	}
	return c
}

// refsOf returns the references to id.
func (ix *index) refsOf(id digest.Digest) []string {
	var out []string
	for ref, target := range ix.Refs {
		if target == id {
			out = append(out, ref)
		}
	}
	sort.Strings(out)
	return out
}
