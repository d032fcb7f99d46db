package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// AuthConfig is the credentials of one registry request (X-Registry-Auth)
// or of POST /auth.
type AuthConfig = registry.AuthConfig

// PullOptions are the options of POST /images/create?fromImage=.
type PullOptions struct {
	// Platform is os/arch[/variant]; empty means the engine's own.
	Platform string
	// AllTags pulls every tag of a repository named without a tag.
	AllTags bool
	// Auth is from X-Registry-Auth; nil means anonymous.
	Auth *AuthConfig
}

// ImagePuller is an ImageBackend that pulls from registries.
type ImagePuller interface {
	ImagePull(ctx context.Context, ref string, opts PullOptions, out io.Writer) error
}

// ImagePusher is an ImageBackend that pushes to registries
// (POST /images/{name}/push).
type ImagePusher interface {
	ImagePush(ctx context.Context, name, tag string, auth *AuthConfig, out io.Writer) error
}

// RegistryBackend serves POST /auth and GET /distribution/{name}/json.
type RegistryBackend interface {
	Login(ctx context.Context, auth AuthConfig) (registry.AuthResponse, error)
	DistributionInspect(ctx context.Context, ref string, auth *AuthConfig) (*registry.DistributionInspect, error)
}

// maxAuthHeader bounds X-Registry-Auth.
const maxAuthHeader = 64 << 10

// decodeAuthHeader decodes X-Registry-Auth: base64url (padded or not;
// standard base64 accepted too, as dockerd does) of a JSON AuthConfig.
// An empty header is nil (anonymous).
func decodeAuthHeader(h string) (*AuthConfig, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return nil, nil
	}
	if len(h) > maxAuthHeader {
		return nil, invalidParameterf("X-Registry-Auth header is longer than %d bytes", maxAuthHeader)
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, invalidParameterf("invalid X-Registry-Auth header: %v", err)
	}
	var a AuthConfig
	if err := json.Unmarshal(raw, &a); err != nil {
		// dockerd treats a header it cannot decode as no credentials.
		return nil, nil
	}
	return &a, nil
}

func (s *Server) imagePull(w http.ResponseWriter, r *http.Request, b ImageBackend, from string) error {
	puller, ok := b.(ImagePuller)
	if !ok {
		return notImplementedError{msg: "pulling images is not supported by this engine"}
	}
	q := r.URL.Query()
	ref := from
	tag := q.Get("tag")
	if tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	opts := PullOptions{AllTags: tag == "" && !strings.ContainsAny(lastComponent(from), ":@")}
	if p := q.Get("platform"); p != "" {
		pl, err := parsePlatform(p)
		if err != nil {
			return err
		}
		opts.Platform = formatPlatform(pl)
	}
	auth, err := decodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	opts.Auth = auth
	// The CLI sends no tag for -a, and "latest" otherwise.
	out := newProgressWriter(w)
	return out.finish(puller.ImagePull(r.Context(), ref, opts, out))
}

// lastComponent is what follows the last "/" of a name.
func lastComponent(s string) string {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	pusher, ok := b.(ImagePusher)
	if !ok {
		return notImplementedError{msg: "pushing images is not supported by this engine"}
	}
	auth, err := decodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	out := newProgressWriter(w)
	return out.finish(pusher.ImagePush(r.Context(), p["name"], r.URL.Query().Get("tag"), auth, out))
}

func (s *Server) registryBackend() (RegistryBackend, error) {
	if s.cfg.Registry == nil {
		return nil, unavailableError{msg: "registry access is not available"}
	}
	return s.cfg.Registry, nil
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.registryBackend()
	if err != nil {
		return err
	}
	var a AuthConfig
	if err := decodeJSON(bodyOrEmpty(r), &a, true); err != nil {
		return err
	}
	resp, err := b.Login(r.Context(), a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) distributionInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.registryBackend()
	if err != nil {
		return err
	}
	auth, err := decodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	resp, err := b.DistributionInspect(r.Context(), p["name"], auth)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}
