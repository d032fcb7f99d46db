package api

import (
	"net/http"

	"github.com/moby/moby/api/types/network"
)

// networkPrune serves POST /networks/prune. Prune removes unused
// user-defined networks only; the engine's networks are the predefined
// bridge, host and none (network create answers 501), so there is none to
// remove. The filters are checked as dockerd checks them, so a bad one is
// still a 400.
func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "until", "label", "label!":
		default:
			return invalidParameterf("invalid filter '%s'", k)
		}
	}
	return writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: []string{}})
}
