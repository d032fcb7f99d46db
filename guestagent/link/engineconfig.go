package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// EngineConfigurer is what the control API needs to read and change the
// engine's daemon.json; pid1 implements it.
type EngineConfigurer interface {
	// EngineConfig is the daemon.json the engine runs with ("{}" when
	// it has none).
	EngineConfig() ([]byte, error)
	// ApplyEngineConfig checks doc, and when it differs from the running
	// one, stores it and restarts the engine with it. When the engine does
	// not come back with it, the previous document is put back and the
	// engine restarted again; the error says why. changed is false when
	// doc was the running document already.
	ApplyEngineConfig(ctx context.Context, doc []byte) (changed bool, err error)
}

// DiskGrower grows the data filesystem to the size of its device, online.
type DiskGrower interface {
	GrowDisk(ctx context.Context) (DiskUsage, error)
}

// ErrInvalidEngineConfig marks a daemon.json the engine would refuse; the
// control API answers it with 400.
var ErrInvalidEngineConfig = errors.New("invalid daemon configuration")

// EngineConfigResult is the body of a successful PUT /engine/config.
type EngineConfigResult struct {
	// Changed is false when the document was the running one: nothing
	// restarted.
	Changed bool   `json:"changed"`
	Engine  string `json:"engine"`
}

// maxEngineConfig bounds the daemon.json a host may send.
const maxEngineConfig = 1 << 20

// engineApplyTimeout bounds an engine restart with a new configuration,
// the rollback included (an emulated VM starts the engine in about a
// second).
const engineApplyTimeout = 3 * time.Minute

func (c *Control) engineConfig(w http.ResponseWriter, r *http.Request) {
	ec, ok := c.Sys.(EngineConfigurer)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this guest cannot change the engine's configuration"))
		return
	}
	doc, err := ec.EngineConfig()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
}

func (c *Control) putEngineConfig(w http.ResponseWriter, r *http.Request) {
	ec, ok := c.Sys.(EngineConfigurer)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this guest cannot change the engine's configuration"))
		return
	}
	doc, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEngineConfig))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("daemon.json: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), engineApplyTimeout)
	defer cancel()
	changed, err := ec.ApplyEngineConfig(ctx, doc)
	switch {
	case errors.Is(err, ErrInvalidEngineConfig):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		writeError(w, http.StatusConflict, err)
	default:
		writeJSON(w, http.StatusOK, EngineConfigResult{Changed: changed, Engine: c.Sys.EngineState()})
	}
}

func (c *Control) growDisk(w http.ResponseWriter, r *http.Request) {
	g, ok := c.Sys.(DiskGrower)
	if !ok {
		writeError(w, http.StatusNotImplemented, errors.New("this guest cannot grow its disk"))
		return
	}
	u, err := g.GrowDisk(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
