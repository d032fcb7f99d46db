package registry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"runtime"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Size limits of what a registry sends besides layers.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 8 << 20
)

// Client talks to registries under one Config.
type Client struct{ p *policy }

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	p, err := newPolicy(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{p: p}, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.p.close() }

// MaxConcurrentDownloads is the number of layers one pull downloads at
// once.
func (c *Client) MaxConcurrentDownloads() int { return c.p.cfg.MaxConcurrentDownloads }

// MaxConcurrentUploads is the number of layers one push uploads at once.
func (c *Client) MaxConcurrentUploads() int { return c.p.cfg.MaxConcurrentUploads }

// IsInsecure reports whether host may be reached over plain HTTP or
// unverified TLS.
func (c *Client) IsInsecure(host string) bool { return c.p.IsInsecure(host) }

// authenticator turns the credentials of a request into ggcr's form;
// no credentials is anonymous access.
func authenticator(a *registrytypes.AuthConfig) authn.Authenticator {
	if a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "") {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// ggcrRef converts a normalised reference to ggcr's, on registry host
// (which may be a mirror's).
func (c *Client) ggcrRef(ref reference.Named, host string) (name.Reference, error) {
	var opts []name.Option
	if c.p.IsInsecure(host) {
		opts = append(opts, name.Insecure)
	}
	// Host names are case-insensitive; the protocol library wants them
	// in lower case.
	reg, err := name.NewRegistry(strings.ToLower(host), opts...)
	if err != nil {
		return nil, &InvalidError{err: fmt.Errorf("invalid reference format: %w", err)}
	}
	repo := reg.Repo(reference.Path(ref))
	switch r := ref.(type) {
	case reference.Canonical:
		return repo.Digest(r.Digest().String()), nil
	case reference.NamedTagged:
		return repo.Tag(r.Tag()), nil
	}
	return repo.Tag("latest"), nil
}

func (c *Client) options(ctx context.Context, host string, auth *registrytypes.AuthConfig) ([]remote.Option, error) {
	t, err := c.p.transport(host)
	if err != nil {
		return nil, err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(t),
		remote.WithAuth(authenticator(auth)),
		remote.WithJobs(c.p.cfg.MaxConcurrentUploads),
	}
	if c.p.cfg.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(c.p.cfg.UserAgent))
	}
	return opts, nil
}

// endpoints are the registry hosts to try for ref, mirrors first for
// Docker Hub images.
func (c *Client) endpoints(ref reference.Named) []string {
	domain := reference.Domain(ref)
	if domain != "docker.io" {
		return []string{domain}
	}
	var out []string
	for _, m := range c.p.mirrors {
		out = append(out, m.Host)
	}
	return append(out, "index.docker.io")
}

// Platform is the platform an image is chosen for.
type Platform = ocispec.Platform

// DefaultPlatform is the engine's own: linux and the VM's architecture.
func DefaultPlatform() Platform {
	p := Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// Layer is one layer of a resolved image, as its manifest lists it.
type Layer struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
	// Foreign layers (URLs set, non-distributable media types) cannot be
	// fetched from the registry.
	Foreign bool
}

// Image is a manifest resolved for one platform.
type Image struct {
	// Host is the registry host the manifest came from (a mirror's, for
	// Docker Hub images pulled through one).
	Host string
	// Repository is the repository path on that host.
	Repository string
	// Digest of the manifest, MediaType its media type; IndexDigest is
	// the digest of the index it was chosen from, if any.
	Digest    digest.Digest
	MediaType string
	Manifest  []byte
	// Config is set by FetchConfig.
	Config      []byte
	ConfigDesc  ocispec.Descriptor
	Layers      []Layer
	IndexDigest digest.Digest

	img v1.Image
}

// InvalidError is a reference or request the registry client refuses.
type InvalidError struct{ err error }

func (e *InvalidError) Error() string     { return e.err.Error() }
func (e *InvalidError) Unwrap() error     { return e.err }
func (e *InvalidError) InvalidParameter() {}

// NotFoundError is a manifest or repository the registry does not have.
type NotFoundError struct{ msg string }

func (e *NotFoundError) Error() string { return e.msg }
func (e *NotFoundError) NotFound()     {}

// UnauthorizedError is a registry refusing the credentials.
type UnauthorizedError struct{ msg string }

func (e *UnauthorizedError) Error() string { return e.msg }
func (e *UnauthorizedError) Unauthorized() {}

// ManifestTooBigError refuses a manifest or config over its limit.
type ManifestTooBigError struct {
	What  string
	Size  int64
	Limit int64
}

func (e *ManifestTooBigError) Error() string {
	return fmt.Sprintf("%s is %d bytes, more than the limit of %d", e.What, e.Size, e.Limit)
}
func (e *ManifestTooBigError) InvalidParameter() {}

// pullError turns a registry error into dockerd's wording.
func pullError(ref reference.Named, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range te.Errors {
			codes[d.Code] = true
		}
		switch {
		case codes[transport.ManifestUnknownErrorCode] || (te.StatusCode == http.StatusNotFound && !codes[transport.NameUnknownErrorCode]):
			return &NotFoundError{msg: fmt.Sprintf("manifest for %s not found: manifest unknown: %s", reference.FamiliarString(ref), firstMessage(te))}
		case codes[transport.NameUnknownErrorCode] || codes[transport.DeniedErrorCode] || te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return &NotFoundError{msg: fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login': %s", reference.FamiliarName(ref), firstMessage(te))}
		}
	}
	return fmt.Errorf("pull %s: %w", reference.FamiliarString(ref), err)
}

func firstMessage(te *transport.Error) string {
	for _, d := range te.Errors {
		return strings.ToLower(string(d.Code)) + ": " + d.Message
	}
	return http.StatusText(te.StatusCode)
}

// Resolve fetches the manifest ref names (choosing platform's manifest
// from an index); FetchConfig then gets the config. Docker Hub images are tried on
// each mirror first. Manifests and configs over their limits are refused;
// a manifest fetched by digest must match it.
func (c *Client) Resolve(ctx context.Context, ref reference.Named, platform Platform, auth *registrytypes.AuthConfig) (*Image, error) {
	var firstErr error
	hosts := c.endpoints(ref)
	for i, host := range hosts {
		im, err := c.resolveOn(ctx, ref, host, platform, auth)
		if err == nil {
			return im, nil
		}
		if i < len(hosts)-1 && ctx.Err() == nil {
			// A mirror that fails is skipped, as dockerd does.
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return nil, err
	}
	return nil, firstErr
}

func (c *Client) resolveOn(ctx context.Context, ref reference.Named, host string, platform Platform, auth *registrytypes.AuthConfig) (*Image, error) {
	gr, err := c.ggcrRef(ref, host)
	if err != nil {
		return nil, err
	}
	opts, err := c.options(ctx, host, auth)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(gr, opts...)
	if err != nil {
		return nil, pullError(ref, err)
	}
	if int64(len(desc.Manifest)) > MaxManifestSize {
		return nil, &ManifestTooBigError{What: "manifest of " + reference.FamiliarString(ref), Size: int64(len(desc.Manifest)), Limit: MaxManifestSize}
	}
	if d, ok := ref.(reference.Digested); ok && digest.FromBytes(desc.Manifest) != d.Digest() {
		return nil, fmt.Errorf("pull %s: manifest does not match its digest", reference.FamiliarString(ref))
	}
	im := &Image{Host: host, Repository: gr.Context().RepositoryStr()}
	if desc.MediaType.IsIndex() {
		im.IndexDigest = digest.FromBytes(desc.Manifest)
		chosen, err := ChoosePlatform(desc.Manifest, platform)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference.FamiliarString(ref), err)
		}
		if chosen.Size > MaxManifestSize {
			return nil, &ManifestTooBigError{What: "manifest " + chosen.Digest.String(), Size: chosen.Size, Limit: MaxManifestSize}
		}
		dr := gr.Context().Digest(chosen.Digest.String())
		desc, err = remote.Get(dr, opts...)
		if err != nil {
			return nil, pullError(ref, err)
		}
		if digest.FromBytes(desc.Manifest) != chosen.Digest {
			return nil, fmt.Errorf("pull %s: manifest %s does not match its digest", reference.FamiliarString(ref), chosen.Digest)
		}
	}
	if !desc.MediaType.IsImage() {
		if desc.MediaType == types.DockerManifestSchema1 || desc.MediaType == types.DockerManifestSchema1Signed {
			return nil, &InvalidError{err: fmt.Errorf("%s: Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed", reference.FamiliarString(ref))}
		}
		return nil, &InvalidError{err: fmt.Errorf("%s: unsupported manifest media type %s", reference.FamiliarString(ref), desc.MediaType)}
	}
	im.Manifest = desc.Manifest
	im.Digest = digest.FromBytes(desc.Manifest)
	im.MediaType = string(desc.MediaType)
	m, err := ParseManifest(desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reference.FamiliarString(ref), err)
	}
	if m.Config.Size > MaxConfigSize {
		return nil, &ManifestTooBigError{What: "image config " + m.Config.Digest.String(), Size: m.Config.Size, Limit: MaxConfigSize}
	}
	im.ConfigDesc = m.Config
	for _, l := range m.Layers {
		im.Layers = append(im.Layers, Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, Foreign: isForeign(l)})
	}
	img, err := desc.Image()
	if err != nil {
		return nil, pullError(ref, err)
	}
	im.img = img
	return im, nil
}

// FetchConfig fetches the image config and checks it against its digest
// (callers that keep configs look in their store first).
func (im *Image) FetchConfig() ([]byte, error) {
	if im.Config != nil {
		return im.Config, nil
	}
	cfg, err := im.img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetch image config %s: %w", im.ConfigDesc.Digest, err)
	}
	if digest.FromBytes(cfg) != im.ConfigDesc.Digest {
		return nil, fmt.Errorf("image config does not match its digest %s", im.ConfigDesc.Digest)
	}
	im.Config = cfg
	return cfg, nil
}

func isForeign(d ocispec.Descriptor) bool {
	switch d.MediaType {
	case string(types.DockerForeignLayer), ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, ocispec.MediaTypeImageLayerNonDistributableZstd:
		return true
	}
	return false
}

// OpenLayer streams the (compressed) blob of layer l. The bytes are
// checked against its digest: reading to the end returns an error
// instead of io.EOF when they do not match.
func (im *Image) OpenLayer(l Layer) (io.ReadCloser, error) {
	h, err := v1.NewHash(l.Digest.String())
	if err != nil {
		return nil, &InvalidError{err: fmt.Errorf("layer digest %q: %w", l.Digest, err)}
	}
	layer, err := im.img.LayerByDigest(h)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch layer %s: %w", l.Digest, err)
	}
	return &verifier{rc: rc, h: sha256.New(), want: l.Digest, size: l.Size}, nil
}

// verifier checks a blob's digest and size as it is read.
type verifier struct {
	rc   io.ReadCloser
	h    hash.Hash
	want digest.Digest
	size int64
	n    int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("blob %s is longer than its %d bytes", v.want, v.size)
	}
	if errors.Is(err, io.EOF) {
		if got := digest.NewDigest(digest.SHA256, v.h); got != v.want {
			return n, fmt.Errorf("blob %s: digest mismatch: got %s", v.want, got)
		}
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("blob %s: %d bytes, expected %d", v.want, v.n, v.size)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }

// ParseManifest decodes an image manifest (OCI or Docker schema 2).
func ParseManifest(b []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("invalid manifest: schema version %d, want 2", m.SchemaVersion)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("invalid manifest: config digest %q: %w", m.Config.Digest, err)
	}
	if m.Config.Size < 0 {
		return nil, fmt.Errorf("invalid manifest: negative config size")
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("invalid manifest: layer %d digest %q: %w", i, l.Digest, err)
		}
		if l.Digest.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("invalid manifest: layer %d: unsupported digest algorithm %s", i, l.Digest.Algorithm())
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("invalid manifest: layer %d has a negative size", i)
		}
	}
	return &m, nil
}

// ParseIndex decodes an OCI index or Docker manifest list.
func ParseIndex(b []byte) (*ocispec.Index, error) {
	var ix ocispec.Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("invalid index: %w", err)
	}
	if ix.SchemaVersion != 2 {
		return nil, fmt.Errorf("invalid index: schema version %d, want 2", ix.SchemaVersion)
	}
	for i, m := range ix.Manifests {
		if err := m.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("invalid index: manifest %d digest %q: %w", i, m.Digest, err)
		}
	}
	return &ix, nil
}

// NoMatchingPlatformError is an index without a manifest for the
// platform asked for.
type NoMatchingPlatformError struct{ Platform Platform }

func (e *NoMatchingPlatformError) Error() string {
	return "no matching manifest for " + FormatPlatform(e.Platform) + " in the manifest list entries"
}
func (e *NoMatchingPlatformError) NotFound() {}

// FormatPlatform writes os/arch[/variant].
func FormatPlatform(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ChoosePlatform picks the manifest of an index for platform: same OS and
// architecture; among those the exact variant, else one without a
// variant, else (for arm64) any; attestation manifests never.
func ChoosePlatform(indexJSON []byte, want Platform) (ocispec.Descriptor, error) {
	ix, err := ParseIndex(indexJSON)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	best, bestScore := -1, 0
	for i, m := range ix.Manifests {
		if m.Platform == nil || m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		p := m.Platform
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		score := 1
		switch {
		case p.Variant == want.Variant:
			score = 3
		case p.Variant == "" || (want.Architecture == "arm64" && (p.Variant == "v8" || want.Variant == "v8")):
			score = 2
		case want.Architecture == "arm64":
			score = 1
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, &NoMatchingPlatformError{Platform: want}
	}
	return ix.Manifests[best], nil
}
