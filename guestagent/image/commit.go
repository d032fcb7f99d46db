//go:build linux

package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe the image Commit makes.
type CommitOptions struct {
	// Config is the new image's container config (the engine merges the
	// container's config and any changes).
	Config    dockerspec.DockerOCIImageConfig
	Author    string
	Comment   string
	CreatedBy string
	// Repo and Tag name the image; no name when Repo is empty.
	Repo, Tag string
	// EmptyLayer records the step in history without adding the
	// container's changes as a layer (a build step that only changes
	// the config).
	EmptyLayer bool
	// Layer, when set, is the new layer's tar instead of the container's
	// changes (key is then unused): a build step on scratch.
	Layer io.Reader
}

// Commit makes a new image from container layer key on top of the image
// parent (docker commit, and each step of a build): the layer's changes
// become a new layer, the parent's history gets one more entry.
func (s *Store) Commit(ctx context.Context, key string, parent digest.Digest, opts CommitOptions) (digest.Digest, error) {
	var named reference.NamedTagged
	if opts.Repo != "" {
		var err error
		if named, err = parseTarget(opts.Repo, opts.Tag); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	prec := s.ix.Images[parent]
	var pcfg *dockerspec.DockerOCIImage
	var err error
	if prec != nil {
		pcfg, err = s.config(parent)
	} else if parent == "" {
		// No parent: the first image of a build FROM scratch.
		prec, pcfg = &record{}, scratchConfig()
	}
	s.mu.Unlock()
	if prec == nil {
		return "", noSuchImage(parent.String())
	}
	if err != nil {
		return "", err
	}
	cfg := *pcfg
	cfg.RootFS.DiffIDs = append([]digest.Digest(nil), prec.DiffIDs...)
	cfg.History = append([]ocispec.History(nil), pcfg.History...)
	chain := prec.ChainID
	release := func() {}
	defer func() { release() }()
	if !opts.EmptyLayer {
		var diff io.Reader = opts.Layer
		if diff == nil {
			d, err := s.snap.Diff(key)
			if err != nil {
				return "", fmt.Errorf("commit %s: %w", key, err)
			}
			defer d.Close()
			diff = d
		}
		h := sha256.New()
		info, err := s.snap.ApplyNewLayer(prec.ChainID, &ctxReader{ctx, io.TeeReader(diff, h)}, s.applyOptions(), func() (digest.Digest, error) {
			diffID := digest.NewDigest(digest.SHA256, h)
			c := diffID
			if prec.ChainID != "" {
				c = digest.FromString(prec.ChainID.String() + " " + diffID.String())
			}
			release = s.hold([]digest.Digest{c})
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
			return c, nil
		})
		if err != nil {
			return "", fmt.Errorf("commit %s: %w", key, err)
		}
		chain = info.ChainID
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Author = opts.Author
	cfg.Config = opts.Config
	cfg.RootFS.Type = "layers"
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: opts.Author, CreatedBy: opts.CreatedBy, Comment: opts.Comment, EmptyLayer: opts.EmptyLayer})
	b, err := json.Marshal(&cfg)
	if err != nil {
		return "", fmt.Errorf("commit %s: encode config: %w", key, err)
	}
	id := digest.FromBytes(b)
	if _, err := s.content.Ingest(ctx, bytes.NewReader(b), id, int64(len(b))); err != nil {
		return "", fmt.Errorf("commit %s: store config: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.ix.clone()
	if next.Images[id] == nil {
		next.Images[id] = &record{ID: id, ChainID: chain, DiffIDs: cfg.RootFS.DiffIDs, Parent: parent}
	}
	if named != nil {
		next.Refs[named.String()] = id
		next.Images[id].LastTagTime = now
	}
	if err := s.commitIndex(next); err != nil {
		return "", fmt.Errorf("commit %s: %w", key, err)
	}
	if named != nil {
		s.emit(events.ActionTag, id, reference.FamiliarString(named))
	}
	return id, nil
}
