//go:build linux

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/builder"
	"github.com/distribution/reference"
)

// newBuilder opens the Dockerfile builder on the engine and the image
// store: tags and pulls go through the store's API backend.
func newBuilder(dataRoot string, be builder.Backend, images api.ImageBackend, log *slog.Logger) (*builder.Builder, error) {
	cfg := builder.Config{
		Root:    filepath.Join(dataRoot, "builder"),
		Backend: be,
		Logger:  log,
		Tag: func(ctx context.Context, imageID, ref string) error {
			named, err := reference.ParseNormalizedNamed(ref)
			if err != nil {
				return builderInvalid{err}
			}
			named = reference.TagNameOnly(named)
			tag := ""
			if t, ok := named.(reference.Tagged); ok {
				tag = t.Tag()
			}
			return images.ImageTag(ctx, imageID, reference.FamiliarName(named), tag)
		},
		Remove: func(ctx context.Context, imageID string) (int64, error) {
			// Only the cache's own images go: a named image stays, as
			// does one a container uses (ImageDelete refuses).
			info, err := images.ImageInspect(ctx, imageID)
			if err != nil {
				return 0, err
			}
			if len(info.RepoTags) > 0 {
				return 0, errImageNamed
			}
			if _, err := images.ImageDelete(ctx, imageID, false, false); err != nil {
				return 0, err
			}
			// The layers are mostly shared with the images built on
			// them, so the image's size would overstate what is freed.
			return 0, nil
		},
	}
	if p, ok := images.(api.ImagePuller); ok {
		cfg.Pull = func(ctx context.Context, ref string, out io.Writer) error {
			return p.ImagePull(ctx, ref, api.PullOptions{}, out)
		}
	}
	return builder.New(cfg)
}

var errImageNamed = errors.New("the image has a name")

type builderInvalid struct{ error }

func (builderInvalid) InvalidParameter() {}
func (e builderInvalid) Unwrap() error   { return e.error }
