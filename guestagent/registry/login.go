package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoginHost turns the serveraddress of POST /auth into a registry host:
// Docker Hub's names (and an empty address) are index.docker.io; a URL
// keeps only its host.
func LoginHost(server string) (string, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return "index.docker.io", nil
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", &InvalidError{err: fmt.Errorf("invalid registry address %q", server)}
		}
		s = u.Host
	} else {
		s, _, _ = strings.Cut(s, "/")
	}
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "index.docker.io", nil
	}
	if _, err := name.NewRegistry(s, name.StrictValidation); err != nil {
		return "", &InvalidError{err: fmt.Errorf("invalid registry address %q: %w", server, err)}
	}
	return s, nil
}

// Login checks credentials against a registry as POST /auth does: the
// registry's /v2/ endpoint is asked with them (after the bearer token
// exchange when the registry uses tokens). A refusal is an
// UnauthorizedError with the registry's words.
func (c *Client) Login(ctx context.Context, auth registrytypes.AuthConfig) (registrytypes.AuthResponse, error) {
	host, err := LoginHost(auth.ServerAddress)
	if err != nil {
		return registrytypes.AuthResponse{}, err
	}
	var opts []name.Option
	if c.p.IsInsecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return registrytypes.AuthResponse{}, &InvalidError{err: err}
	}
	base, err := c.p.transport(host)
	if err != nil {
		return registrytypes.AuthResponse{}, err
	}
	rt, err := transport.NewWithContext(ctx, reg, authenticator(&auth), base, nil)
	if err != nil {
		return registrytypes.AuthResponse{}, loginError(host, err)
	}
	resp, err := c.v2(ctx, rt, reg.Scheme(), host)
	if err != nil {
		return registrytypes.AuthResponse{}, loginError(host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return registrytypes.AuthResponse{Status: "Login Succeeded"}, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return registrytypes.AuthResponse{}, &UnauthorizedError{msg: fmt.Sprintf("login attempt to %s://%s/v2/ failed with status: %d %s", resp.Request.URL.Scheme, host, resp.StatusCode, http.StatusText(resp.StatusCode))}
	default:
		return registrytypes.AuthResponse{}, fmt.Errorf("login to %s: unexpected status %d: %s", host, resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

// v2 GETs /v2/ through rt: https first; plain http only where the
// registry is insecure.
func (c *Client) v2(ctx context.Context, rt http.RoundTripper, scheme, host string) (*http.Response, error) {
	try := func(s string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s+"://"+host+"/v2/", nil)
		if err != nil {
			return nil, err
		}
		return rt.RoundTrip(req)
	}
	resp, err := try("https")
	if err != nil && scheme == "http" && c.p.IsInsecure(host) {
		if r2, err2 := try("http"); err2 == nil {
			return r2, nil
		}
	}
	return resp, err
}

func loginError(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return &UnauthorizedError{msg: fmt.Sprintf("Get \"https://%s/v2/\": %s", host, firstMessage(te))}
	}
	return fmt.Errorf("login to %s: %w", host, err)
}

// Inspect serves GET /distribution/{name}/json: the descriptor of what
// ref names on its registry and, for an index, its platforms.
func (c *Client) Inspect(ctx context.Context, ref reference.Named, auth *registrytypes.AuthConfig) (*registrytypes.DistributionInspect, error) {
	host := c.endpoints(ref)[len(c.endpoints(ref))-1]
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
	out := &registrytypes.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: digest.FromBytes(desc.Manifest), Size: int64(len(desc.Manifest))},
		Platforms:  []ocispec.Platform{},
	}
	if desc.MediaType.IsIndex() {
		ix, err := ParseIndex(desc.Manifest)
		if err != nil {
			return nil, err
		}
		for _, m := range ix.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" {
				out.Platforms = append(out.Platforms, *m.Platform)
			}
		}
		return out, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, pullError(ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, pullError(ref, err)
	}
	out.Platforms = append(out.Platforms, ocispec.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion})
	return out, nil
}

// Tags lists the tags of ref's repository (docker pull --all-tags).
func (c *Client) Tags(ctx context.Context, ref reference.Named, auth *registrytypes.AuthConfig) ([]string, error) {
	var lastErr error
	for _, host := range c.endpoints(ref) {
		gr, err := c.ggcrRef(reference.TrimNamed(ref), host)
		if err != nil {
			return nil, err
		}
		opts, err := c.options(ctx, host, auth)
		if err != nil {
			return nil, err
		}
		tags, err := remote.List(gr.Context(), opts...)
		if err == nil {
			return tags, nil
		}
		lastErr = pullError(ref, err)
	}
	return nil, lastErr
}
