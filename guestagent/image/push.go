//go:build linux

package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
)

// ImagePush serves POST /images/{name}/push: every tag of the repository
// when tag is empty (as docker push -a), else name:tag. Layers go up as
// the registry package decides (skipped when present, mounted across
// repositories, else uploaded).
func (s *Store) ImagePush(ctx context.Context, name, tag string, auth *api.AuthConfig, out io.Writer) error {
	rc, err := s.registryClient()
	if err != nil {
		return err
	}
	named, err := ParseReference(name)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return invalidf("cannot push a digest reference")
	}
	var refs []reference.NamedTagged
	s.mu.Lock()
	if t, ok := named.(reference.NamedTagged); ok {
		if tag != "" && tag != t.Tag() {
			s.mu.Unlock()
			return invalidf("invalid reference format: %s:%s", name, tag)
		}
		refs = append(refs, t)
	} else if tag != "" {
		t, err := reference.WithTag(named, tag)
		if err != nil {
			s.mu.Unlock()
			return &invalidError{err: err}
		}
		refs = append(refs, t)
	} else {
		for _, r := range sortedKeys(s.ix.Refs) {
			p, err := reference.ParseNormalizedNamed(r)
			if err != nil || p.Name() != named.Name() {
				continue
			}
			if t, ok := p.(reference.NamedTagged); ok {
				refs = append(refs, t)
			}
		}
	}
	for _, r := range refs {
		if _, ok := s.ix.Refs[r.String()]; !ok {
			s.mu.Unlock()
			return &noLocalTagError{name: reference.FamiliarName(r)}
		}
	}
	s.mu.Unlock()
	if len(refs) == 0 {
		return &noLocalTagError{name: reference.FamiliarName(named)}
	}
	pr := newProgress(out)
	pr.status("", "The push refers to repository ["+named.Name()+"]")
	for _, r := range refs {
		if err := s.pushOne(ctx, rc, r, auth, pr); err != nil {
			return err
		}
	}
	return pr.err
}

func (s *Store) pushOne(ctx context.Context, rc *registry.Client, ref reference.NamedTagged, auth *api.AuthConfig, pr *progress) error {
	s.mu.Lock()
	id, ok := s.ix.Refs[ref.String()]
	r := s.ix.Images[id]
	if !ok || r == nil {
		s.mu.Unlock()
		return &notFoundError{ref: reference.FamiliarString(ref)}
	}
	diffIDs := append([]digest.Digest(nil), r.DiffIDs...)
	s.mu.Unlock()
	cfg, err := s.content.ReadAll(id)
	if err != nil {
		return fmt.Errorf("push %s: %w", reference.FamiliarString(ref), err)
	}
	chains := chainIDs(diffIDs)
	defer s.hold(chains)()
	layers := make([]registry.PushLayer, len(diffIDs))
	for i := range diffIDs {
		chain, diffID := chains[i], diffIDs[i]
		rcl, size, err := s.snap.LayerTar(chain, diffID)
		if err != nil {
			return fmt.Errorf("push %s: layer %s: %w", reference.FamiliarString(ref), diffID, err)
		}
		rcl.Close()
		layers[i] = registry.PushLayer{
			DiffID: diffID,
			Size:   size,
			Open: func() (io.ReadCloser, error) {
				rc, _, err := s.snap.LayerTar(chain, diffID)
				return rc, err
			},
			Known: s.knownBlobs(diffID),
		}
	}
	// Progress IDs are the short diff IDs, as dockerd shows them.
	res, err := rc.Push(ctx, ref, auth, cfg, layers, func(ev registry.PushEvent) {
		lid := shortDigest(diffIDs[ev.Index])
		if ev.Status == "Pushing" {
			pr.bar(lid, ev.Status, ev.Current, ev.Total)
			return
		}
		pr.status(lid, ev.Status)
	})
	if err != nil {
		return err
	}
	s.rememberBlobs(diffIDs, res.Blobs)
	canonical, err := reference.WithDigest(reference.TrimNamed(ref), res.Digest)
	if err == nil {
		s.mu.Lock()
		next := s.ix.clone()
		if next.Images[id] != nil {
			next.Refs[canonical.String()] = id
			if err := s.commitIndex(next); err != nil {
				s.log.Warn("recording pushed digest", "ref", canonical.String(), "err", err)
			}
		}
		s.emit(events.ActionPush, id, reference.FamiliarString(ref))
		s.mu.Unlock()
	}
	pr.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", ref.Tag(), res.Digest, res.Size)})
	aux, _ := json.Marshal(map[string]any{"Tag": ref.Tag(), "Digest": res.Digest.String(), "Size": res.Size})
	raw := json.RawMessage(aux)
	pr.send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &raw})
	return pr.err
}

// Login serves POST /auth.
func (s *Store) Login(ctx context.Context, auth api.AuthConfig) (registrytypes.AuthResponse, error) {
	rc, err := s.registryClient()
	if err != nil {
		return registrytypes.AuthResponse{}, err
	}
	return rc.Login(ctx, auth)
}

// DistributionInspect serves GET /distribution/{name}/json.
func (s *Store) DistributionInspect(ctx context.Context, name string, auth *api.AuthConfig) (*registrytypes.DistributionInspect, error) {
	rc, err := s.registryClient()
	if err != nil {
		return nil, err
	}
	ref, err := ParseReference(name)
	if err != nil {
		return nil, err
	}
	return rc.Inspect(ctx, reference.TagNameOnly(ref), auth)
}

var (
	_ api.ImagePuller     = (*Store)(nil)
	_ api.ImagePusher     = (*Store)(nil)
	_ api.RegistryBackend = (*Store)(nil)
)

// noLocalTagError is dockerd's 404 for pushing a name nothing carries.
type noLocalTagError struct{ name string }

func (e *noLocalTagError) Error() string {
	return "An image does not exist locally with the tag: " + e.name
}
func (e *noLocalTagError) NotFound() {}
