package api

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/network"
)

// NetworkBackend serves /networks/* (the engine over guestagent/network).
type NetworkBackend interface {
	NetworkList(ctx context.Context, filters Filters) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (*network.Inspect, error)
	NetworkCreate(ctx context.Context, req network.CreateRequest) (*network.CreateResponse, error)
	// NetworkRemove refuses predefined networks and networks in use.
	NetworkRemove(ctx context.Context, ref string) error
	NetworkConnect(ctx context.Context, ref string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectRequest) error
	NetworkPrune(ctx context.Context, filters Filters) (*network.PruneReport, error)
}

func (s *Server) networkBackend() (NetworkBackend, error) {
	if s.cfg.Networks == nil {
		return nil, unavailableError{msg: "the network service is not available"}
	}
	return s.cfg.Networks, nil
}

// networkList serves GET /networks.
func (s *Server) networkList(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	out, err := b.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	if out == nil {
		out = []network.Summary{}
	}
	return writeJSON(w, http.StatusOK, out)
}

// networkInspect serves GET /networks/{id}. verbose and scope are
// accepted; this engine's networks are all local.
func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	if sc := r.URL.Query().Get("scope"); sc != "" && sc != "local" {
		return notFoundError{msg: "network " + p["id"] + " not found"}
	}
	n, err := b.NetworkInspect(r.Context(), p["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

// networkCreate serves POST /networks/create.
func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	var req network.CreateRequest
	if err := decodeJSON(r.Body, &req, true); err != nil {
		return err
	}
	resp, err := b.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

// networkRemove serves DELETE /networks/{id}.
func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	if err := b.NetworkRemove(r.Context(), p["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// networkConnect serves POST /networks/{id}/connect.
func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	req, err := decodeEndpointRequest(r, func(q *network.ConnectRequest) string { return q.Container })
	if err != nil {
		return err
	}
	if err := b.NetworkConnect(r.Context(), p["id"], *req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// decodeEndpointRequest reads the JSON body of connect and disconnect,
// whose container (container(req)) is required.
func decodeEndpointRequest[T any](r *http.Request, container func(*T) string) (*T, error) {
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return nil, err
	}
	req := new(T)
	if err := decodeJSON(r.Body, req, true); err != nil {
		return nil, err
	}
	if container(req) == "" {
		return nil, invalidParameterf("no container name or ID supplied")
	}
	return req, nil
}

// networkDisconnect serves POST /networks/{id}/disconnect.
func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	req, err := decodeEndpointRequest(r, func(q *network.DisconnectRequest) string { return q.Container })
	if err != nil {
		return err
	}
	if err := b.NetworkDisconnect(r.Context(), p["id"], *req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// networkPrune serves POST /networks/prune.
func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.networkBackend()
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	rep, err := b.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep == nil {
		rep = &network.PruneReport{}
	}
	if rep.NetworksDeleted == nil {
		rep.NetworksDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}
