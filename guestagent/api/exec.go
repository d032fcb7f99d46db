package api

import (
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

func (s *Server) execBackend() (ExecBackend, error) {
	if s.cfg.Exec == nil {
		return nil, unavailableError{msg: "the exec service is not available"}
	}
	return s.cfg.Exec, nil
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.execBackend()
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	req, err := decodeExecCreate(r.Body)
	if err != nil {
		return err
	}
	id, err := b.ExecCreate(r.Context(), p["name"], req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// execStart serves POST /exec/{id}/start. Detached, it answers 200 as
// soon as the process runs. Otherwise the backend hijacks the connection
// through GetStreams; an error after that is written into the stream, as
// dockerd does, since the response head is gone.
func (s *Server) execStart(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.execBackend()
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	req, err := decodeExecStart(r.Body)
	if err != nil {
		return err
	}
	opts := ExecStartOptions{Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize}
	if req.Detach {
		if err := b.ExecStart(r.Context(), p["id"], opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ss := &streamSession{srv: s, w: w, r: r}
	opts.GetStreams = ss.get
	err = b.ExecStart(r.Context(), p["id"], opts)
	hc := ss.conn()
	if hc == nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("start exec %s: the backend returned without streams", p["id"])
	}
	if err != nil {
		s.log.Warn("exec session ended with an error", "exec", p["id"], "err", err)
		out, _ := hc.streams(hc.multiplexed)
		_, _ = fmt.Fprintf(out, "%v\r\n", err)
	}
	hc.close()
	return nil
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.execBackend()
	if err != nil {
		return err
	}
	resp, err := b.ExecInspect(r.Context(), p["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.execBackend()
	if err != nil {
		return err
	}
	h, wd, err := parseSize(r.URL.Query())
	if err != nil {
		return err
	}
	if err := b.ExecResize(r.Context(), p["id"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
