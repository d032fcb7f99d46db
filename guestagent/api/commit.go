package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// CommitOptions are the query and body of POST /commit (docker commit).
type CommitOptions struct {
	Repo, Tag string
	Comment   string
	Author    string
	// Changes are Dockerfile instructions applied to the new image's
	// config (docker commit -c).
	Changes []string
	// Pause freezes the container while its layer is read (the default).
	Pause bool
	// Config is the body: a container config whose set fields override
	// the container's in the new image; nil when the body is empty.
	Config *container.Config
}

// Committer is a ContainerBackend that makes images from containers.
type Committer interface {
	// ContainerCommit returns the new image's ID.
	ContainerCommit(ctx context.Context, name string, opts CommitOptions) (string, error)
}

func (s *Server) containerCommit(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	cm, ok := b.(Committer)
	if !ok {
		return notImplementedError{msg: "committing containers is not supported yet"}
	}
	q := r.URL.Query()
	name := q.Get("container")
	if name == "" {
		return invalidParameterf("no container specified: the container query parameter is required")
	}
	opts := CommitOptions{
		Repo:    q.Get("repo"),
		Tag:     q.Get("tag"),
		Comment: q.Get("comment"),
		Author:  q.Get("author"),
		Changes: q["changes"],
		Pause:   q.Get("pause") == "" || boolValue(q, "pause"),
	}
	if opts.Tag != "" && opts.Repo == "" {
		return invalidParameterf("a tag requires a repository name")
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength > 0); err != nil {
		return err
	}
	var cfg container.Config
	var body bool
	if r.Body != nil && r.ContentLength != 0 {
		if err := decodeJSON(r.Body, &cfg, false); err != nil {
			return err
		}
		body = true
	}
	if body {
		opts.Config = &cfg
	}
	id, err := cm.ContainerCommit(r.Context(), name, opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}
