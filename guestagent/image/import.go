//go:build linux

package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/snapshot"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageImport serves POST /images/create?fromSrc=-: the tar in in (plain,
// gzip or zstd) becomes a one-layer image, named Repo:Tag when Repo is
// set. The message goes into the history ("Imported from -" when empty);
// Changes are applied to the config. The stream ends with
// {"status":"sha256:<id>"}.
func (s *Store) ImageImport(ctx context.Context, in io.Reader, opts api.ImportOptions, out io.Writer) error {
	var named reference.NamedTagged
	if opts.Repo != "" {
		var err error
		if named, err = parseTarget(opts.Repo, opts.Tag); err != nil {
			return err
		}
	}
	arch, variant := goruntime.GOARCH, ""
	if opts.Platform != "" {
		p := strings.Split(opts.Platform, "/")
		if p[0] != "linux" || len(p) < 2 || len(p) > 3 || p[1] == "" {
			return invalidf("unsupported platform %q: only linux/<arch> images can be imported", opts.Platform)
		}
		arch = p[1]
		if len(p) == 3 {
			variant = p[2]
		}
	}
	var cfg dockerspec.DockerOCIImage
	if err := applyChanges(&cfg.Config, opts.Changes); err != nil {
		return err
	}

	dec, err := snapshot.Decompress(in)
	if err != nil {
		return &invalidError{err: fmt.Errorf("import: %w", err)}
	}
	defer dec.Close()
	diffHash := sha256.New()
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	info, err := s.snap.ApplyNewLayer("", io.TeeReader(&ctxReader{ctx, dec}, diffHash), snapshot.ApplyOptions{AllowDevices: s.opts.AllowDevices}, func() (digest.Digest, error) {
		id := digest.NewDigest(digest.SHA256, diffHash)
		release = s.hold([]digest.Digest{id})
		return id, nil
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	diffID := info.ChainID // a base layer's chain ID is its diff ID

	msg := opts.Message
	if msg == "" {
		msg = "Imported from -"
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Architecture = arch
	cfg.Variant = variant
	cfg.OS = "linux"
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &now, Comment: msg}}
	cfgBytes, err := json.Marshal(&cfg)
	if err != nil {
		return fmt.Errorf("import: encode config: %w", err)
	}
	id := digest.FromBytes(cfgBytes)
	if _, err := s.content.Ingest(ctx, bytes.NewReader(cfgBytes), id, int64(len(cfgBytes))); err != nil {
		return fmt.Errorf("import: store config: %w", err)
	}
	s.mu.Lock()
	next := s.ix.clone()
	next.Images[id] = &record{ID: id, ChainID: diffID, DiffIDs: []digest.Digest{diffID}}
	if named != nil {
		next.Refs[named.String()] = id
		next.Images[id].LastTagTime = now
	}
	err = s.commitIndex(next)
	if err == nil {
		s.emit(events.ActionImport, id, id.String())
		if named != nil {
			s.emit(events.ActionTag, id, reference.FamiliarString(named))
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := json.NewEncoder(out).Encode(jsonstream.Message{Status: id.String()}); err != nil {
		return fmt.Errorf("import: write status: %w", err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
