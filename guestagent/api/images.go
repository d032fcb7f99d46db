package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/image"
)

func (s *Server) imageBackend() (ImageBackend, error) {
	if s.cfg.Images == nil {
		return nil, unavailableError{msg: "the image service is not available"}
	}
	return s.cfg.Images, nil
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := ImageListOptions{
		All:        boolValue(q, "all"),
		SharedSize: boolValue(q, "shared-size"),
		Manifests:  boolValue(q, "manifests"),
	}
	if opts.Filters, err = parseFilters(q.Get("filters")); err != nil {
		return err
	}
	list, err := b.ImageList(r.Context(), opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	resp, err := b.ImageInspect(r.Context(), p["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	hist, err := b.ImageHistory(r.Context(), p["name"])
	if err != nil {
		return err
	}
	if hist == nil {
		hist = []image.HistoryResponseItem{}
	}
	return writeJSON(w, http.StatusOK, hist)
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Get("repo") == "" {
		return invalidParameterf("repository name must have at least one component")
	}
	if err := b.ImageTag(r.Context(), p["name"], q.Get("repo"), q.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	resp, err := b.ImageDelete(r.Context(), p["name"], boolValue(q, "force"), boolValue(q, "noprune"))
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// progressWriter is the JSON-message stream of load and import: it sends
// the 200 head with the first write and flushes every write, and records
// whether anything has gone out, which decides how a late error is told.
type progressWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func newProgressWriter(w http.ResponseWriter) *progressWriter {
	return &progressWriter{w: w, rc: http.NewResponseController(w)}
}

func (p *progressWriter) start() {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.start()
	n, err := p.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, p.rc.Flush()
}

// streamError is the JSON message that ends a progress stream in failure;
// the CLI reads errorDetail (and older ones read error).
type streamError struct {
	ErrorDetail struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

// finish ends a progress stream: a failure before anything was written is
// an ordinary error response; after that it goes into the stream.
func (p *progressWriter) finish(err error) error {
	if err == nil {
		p.start()
		return nil
	}
	if !p.started {
		return err
	}
	var m streamError
	m.ErrorDetail.Message = err.Error()
	m.Error = err.Error()
	_ = json.NewEncoder(p).Encode(m)
	return nil
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if len(q["platform"]) > 0 {
		return notImplementedError{msg: "loading a single platform of an image is not supported yet"}
	}
	out := newProgressWriter(w)
	return out.finish(b.ImageLoad(r.Context(), bodyOrEmpty(r), boolValue(q, "quiet"), out))
}

// importOptions decodes the query of POST /images/create?fromSrc=.
func importOptions(q url.Values) (ImportOptions, error) {
	opts := ImportOptions{
		Repo:     q.Get("repo"),
		Tag:      q.Get("tag"),
		Message:  q.Get("message"),
		Changes:  q["changes"],
		Platform: q.Get("platform"),
	}
	if opts.Tag != "" && opts.Repo == "" {
		return opts, invalidParameterf("a tag requires a repository name")
	}
	if opts.Platform != "" {
		p, err := parsePlatform(opts.Platform)
		if err != nil {
			return opts, err
		}
		opts.Platform = formatPlatform(p)
	}
	return opts, nil
}

// imageCreate serves POST /images/create: pull (fromImage) or import
// from the request body (fromSrc=-). Importing from a URL is not offered.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.imageBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if from := q.Get("fromImage"); from != "" {
		return s.imagePull(w, r, b, from)
	}
	src := q.Get("fromSrc")
	switch src {
	case "":
		return invalidParameterf("either fromImage or fromSrc must be set")
	case "-":
	default:
		return notImplementedError{msg: "importing from a URL is not supported yet: send the archive in the request body (fromSrc=-)"}
	}
	opts, err := importOptions(q)
	if err != nil {
		return err
	}
	if opts.Message == "" {
		opts.Message = "Imported from -"
	}
	out := newProgressWriter(w)
	return out.finish(b.ImageImport(r.Context(), bodyOrEmpty(r), opts, out))
}

func bodyOrEmpty(r *http.Request) io.Reader {
	if r.Body == nil {
		return http.NoBody
	}
	return r.Body
}
