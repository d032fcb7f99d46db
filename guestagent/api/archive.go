package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// ArchiveBackend serves docker cp (/containers/{id}/archive), docker
// export and docker diff.
type ArchiveBackend interface {
	// ContainerStatPath describes path in the container's filesystem
	// without following a final symlink.
	ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error)
	// ContainerArchivePath returns a tar of path (named by path's base
	// name) and path's stat. The caller closes the reader.
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error)
	// ContainerExtractToDir unpacks the tar in content into the directory
	// path of the container.
	ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, content io.Reader) error
	// ContainerExport returns a tar of the container's whole filesystem.
	ContainerExport(ctx context.Context, name string) (io.ReadCloser, error)
	// ContainerChanges lists what the container changed in its image's
	// filesystem.
	ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error)
}

// ExtractOptions are the query parameters of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the archive's owners; otherwise files belong to
	// the container's root (uid 0).
	CopyUIDGID bool
}

func (s *Server) archiveBackend() (ArchiveBackend, error) {
	if s.cfg.Archive == nil {
		return nil, unavailableError{msg: "the container archive service is not available"}
	}
	return s.cfg.Archive, nil
}

const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", invalidParameterf("path parameter is required")
	}
	return p, nil
}

// containerArchiveHead serves HEAD /containers/{name}/archive?path=.
func (s *Server) containerArchiveHead(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := b.ContainerStatPath(r.Context(), p["name"], path)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerArchiveGet serves GET /containers/{name}/archive?path=.
func (s *Server) containerArchiveGet(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := b.ContainerArchivePath(r.Context(), p["name"], path)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("streaming container archive", "container", p["name"], "path", path, "err", err)
	}
	return nil
}

// containerArchivePut serves PUT /containers/{name}/archive?path=.
func (s *Server) containerArchivePut(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	path, err := archivePath(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := ExtractOptions{NoOverwriteDirNonDir: boolValue(q, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(q, "copyUIDGID")}
	if err := b.ContainerExtractToDir(r.Context(), p["name"], path, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerExport serves GET /containers/{name}/export.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	rc, err := b.ContainerExport(r.Context(), p["name"])
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("streaming container export", "container", p["name"], "err", err)
	}
	return nil
}

// containerChanges serves GET /containers/{name}/changes.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.archiveBackend()
	if err != nil {
		return err
	}
	ch, err := b.ContainerChanges(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, ch)
}
