package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types"
)

func (s *Server) systemBackend() (SystemBackend, error) {
	if s.cfg.System == nil {
		return nil, unavailableError{msg: "the system service is not available"}
	}
	return s.cfg.System, nil
}

// ping answers GET and HEAD /_ping.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ params) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", s.cfg.BuilderVersion)
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.systemBackend()
	if err != nil {
		return err
	}
	v, err := b.SystemVersion(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.systemBackend()
	if err != nil {
		return err
	}
	info, err := b.SystemInfo(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// eventsQuery is the decoded query of GET /events.
type eventsQuery struct {
	Since, Until time.Time
	Filters      Filters
}

func parseEventsQuery(q map[string][]string) (eventsQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var eq eventsQuery
	var err error
	if eq.Since, err = parseTimestamp(get("since")); err != nil {
		return eq, err
	}
	if eq.Until, err = parseTimestamp(get("until")); err != nil {
		return eq, err
	}
	if !eq.Until.IsZero() && eq.Since.After(eq.Until) {
		return eq, invalidParameterf("since time (%s) cannot be after until time (%s)", get("since"), get("until"))
	}
	if eq.Filters, err = parseFilters(get("filters")); err != nil {
		return eq, err
	}
	return eq, nil
}

// events streams the event log as one JSON object per line, flushed after
// each: first the recorded events in range, then live ones until "until",
// the client leaves, or the server shuts down.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.systemBackend()
	if err != nil {
		return err
	}
	eq, err := parseEventsQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	past, live, cancel := b.SubscribeEvents(ctx, eq.Since, eq.Until, eq.Filters)
	if cancel != nil {
		defer cancel()
	}

	w.Header().Set("Content-Type", eventsContentType(r.Header.Values("Accept")))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	for _, ev := range past {
		if err := enc.Encode(ev); err != nil {
			return nil // the client left; the response has started
		}
	}
	_ = rc.Flush()
	if live == nil {
		return nil
	}
	var deadline <-chan time.Time
	if !eq.Until.IsZero() {
		t := time.NewTimer(time.Until(eq.Until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case ev, ok := <-live:
			if !ok {
				return nil
			}
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil
		}
	}
}

// eventsContentType picks the media type of the events stream: JSON Lines
// or NDJSON when the client asks for them (both are the same bytes), else
// application/json as older dockerd sends.
func eventsContentType(accept []string) string {
	for _, a := range accept {
		for part := range strings.SplitSeq(a, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			switch strings.TrimSpace(mt) {
			case types.MediaTypeJSONLines:
				return types.MediaTypeJSONLines
			case types.MediaTypeNDJSON:
				return types.MediaTypeNDJSON
			}
		}
	}
	return types.MediaTypeJSON
}
