package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

// VolumeBackend serves /volumes/* (guestagent/volume).
type VolumeBackend interface {
	// VolumeCreate makes a volume, or returns the existing one of the
	// requested name.
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (*volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volume.Volume, error)
	VolumeList(ctx context.Context, filters Filters) (volume.ListResponse, error)
	// VolumeRemove fails with a conflict while a container references the
	// volume; force makes a missing volume no error.
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, filters Filters) (*volume.PruneReport, error)
}

func (s *Server) volumeBackend() (VolumeBackend, error) {
	if s.cfg.Volumes == nil {
		return nil, unavailableError{msg: "the volume service is not available"}
	}
	return s.cfg.Volumes, nil
}

// volumeList serves GET /volumes.
func (s *Server) volumeList(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.volumeBackend()
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	resp, err := b.VolumeList(r.Context(), f)
	if err != nil {
		return err
	}
	if resp.Volumes == nil {
		resp.Volumes = []volume.Volume{}
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// volumeCreate serves POST /volumes/create.
func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.volumeBackend()
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	var req volume.CreateRequest
	if err := decodeJSON(r.Body, &req, false); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return notImplementedError{msg: "cluster volumes are not supported"}
	}
	v, err := b.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

// volumeInspect serves GET /volumes/{name}.
func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.volumeBackend()
	if err != nil {
		return err
	}
	v, err := b.VolumeInspect(r.Context(), p["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// volumeRemove serves DELETE /volumes/{name}?force=.
func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.volumeBackend()
	if err != nil {
		return err
	}
	if err := b.VolumeRemove(r.Context(), p["name"], boolValue(r.URL.Query(), "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune serves POST /volumes/prune.
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.volumeBackend()
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	rep, err := b.VolumePrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &volume.PruneReport{}
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
