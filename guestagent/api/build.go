package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/build"
)

// BuildOptions are the query parameters of POST /build (the classic
// builder).
type BuildOptions struct {
	Dockerfile  string
	Tags        []string
	BuildArgs   map[string]*string
	Target      string
	NoCache     bool
	Pull        bool
	Labels      map[string]string
	NetworkMode string
	Quiet       bool
	Remote      string
	Platform    string
}

// BuildBackend serves POST /build and POST /build/prune.
type BuildBackend interface {
	// Build builds the context tar in (or opts.Remote) and writes the
	// JSON message stream to out, calling flush after each message. It
	// returns the image ID. An error with a StepExitCode method is a
	// failed RUN: the CLI exits with that code.
	Build(ctx context.Context, opts BuildOptions, in io.Reader, out io.Writer, flush func()) (string, error)
	// BuildPrune empties the build cache.
	BuildPrune(ctx context.Context) (deleted []string, reclaimed int64, err error)
}

// buildOptions decodes the query of POST /build.
func buildOptions(q url.Values) (BuildOptions, error) {
	opts := BuildOptions{
		Dockerfile:  q.Get("dockerfile"),
		Tags:        q["t"],
		Target:      q.Get("target"),
		NoCache:     boolValue(q, "nocache"),
		Pull:        boolValue(q, "pull"),
		NetworkMode: q.Get("networkmode"),
		Quiet:       boolValue(q, "q"),
		Remote:      q.Get("remote"),
		Platform:    q.Get("platform"),
	}
	if v := q.Get("version"); v != "" && v != "1" {
		return opts, notImplementedError{msg: "BuildKit builds (version " + v + ") are not supported: this engine has the classic builder (DOCKER_BUILDKIT=0)"}
	}
	if raw := q.Get("buildargs"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &opts.BuildArgs); err != nil {
			return opts, invalidParameterf("invalid buildargs parameter: %w", err)
		}
	}
	if raw := q.Get("labels"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &opts.Labels); err != nil {
			return opts, invalidParameterf("invalid labels parameter: %w", err)
		}
	}
	for _, t := range opts.Tags {
		if strings.TrimSpace(t) == "" {
			return opts, invalidParameterf("invalid tag: empty")
		}
	}
	return opts, nil
}

func (s *Server) buildBackend() (BuildBackend, error) {
	if s.cfg.Builder == nil {
		return nil, notImplementedError{msg: "building images is not supported by this engine"}
	}
	return s.cfg.Builder, nil
}

func (s *Server) build(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.buildBackend()
	if err != nil {
		return err
	}
	opts, err := buildOptions(r.URL.Query())
	if err != nil {
		return err
	}
	out := newProgressWriter(w)
	_, err = b.Build(r.Context(), opts, bodyOrEmpty(r), out, nil)
	if err == nil {
		out.start()
		return nil
	}
	if !out.started {
		return err // nothing streamed yet: an error response
	}
	var m buildError
	m.ErrorDetail.Message = err.Error()
	m.Error = err.Error()
	var code interface{ StepExitCode() int }
	if errors.As(err, &code) {
		m.ErrorDetail.Code = code.StepExitCode()
	}
	_ = json.NewEncoder(out).Encode(m)
	return nil
}

// buildError ends a build stream in failure; a failed RUN carries its
// exit code, which the CLI exits with.
type buildError struct {
	ErrorDetail struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.buildBackend()
	if err != nil {
		return err
	}
	deleted, reclaimed, err := b.BuildPrune(r.Context())
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	return writeJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: deleted, SpaceReclaimed: uint64(reclaimed)})
}
