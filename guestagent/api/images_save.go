package api

import (
	"context"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/image"
)

// ImageSaver is an ImageBackend that writes docker save archives
// (GET /images/get and /images/{name}/get).
type ImageSaver interface {
	ImageSave(ctx context.Context, names []string, out io.Writer) error
}

// ImagePruner is an ImageBackend that removes unused images
// (POST /images/prune).
type ImagePruner interface {
	ImagePrune(ctx context.Context, filters Filters) (*image.PruneReport, error)
}

// tarWriter sends the archive's headers with its first byte, so that an
// error found before anything is written still gets its own status.
type tarWriter struct {
	w       http.ResponseWriter
	started bool
}

func (t *tarWriter) Write(p []byte) (int, error) {
	if !t.started {
		t.started = true
		t.w.Header().Set("Content-Type", "application/x-tar")
		t.w.WriteHeader(http.StatusOK)
	}
	return t.w.Write(p)
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	saver, ok := b.(ImageSaver)
	if !ok {
		return notImplementedError{msg: "saving images (docker save) is not supported yet"}
	}
	q := r.URL.Query()
	if len(q["platform"]) > 0 {
		return notImplementedError{msg: "saving a single platform of an image is not supported yet"}
	}
	names := q["names"]
	if name := p["name"]; name != "" {
		names = []string{name}
	}
	if len(names) == 0 {
		return invalidParameterf("no images to save: give at least one name")
	}
	out := &tarWriter{w: w}
	err = saver.ImageSave(r.Context(), names, out)
	if err != nil && out.started {
		// Too late for a status: the client sees a truncated archive.
		s.log.Error("docker save failed mid-stream", "images", names, "err", err)
		return nil
	}
	if err == nil && !out.started {
		out.Write(nil)
	}
	return err
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	pruner, ok := b.(ImagePruner)
	if !ok {
		return notImplementedError{msg: "pruning images is not supported yet"}
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	rep, err := pruner.ImagePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &image.PruneReport{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
