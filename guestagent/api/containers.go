package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *Server) containerBackend() (ContainerBackend, error) {
	if s.cfg.Containers == nil {
		return nil, unavailableError{msg: "the container service is not available"}
	}
	return s.cfg.Containers, nil
}

type platformKey struct{}

// RequestedPlatform returns the platform a POST /containers/create asked
// for with its "platform" query parameter, if it named one. The router
// has validated it (os[/arch[/variant]], linux only).
func RequestedPlatform(ctx context.Context) (ocispec.Platform, bool) {
	p, ok := ctx.Value(platformKey{}).(ocispec.Platform)
	return p, ok
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name := q.Get("name")
	if name != "" {
		if err := checkContainerName(name); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if ps := q.Get("platform"); ps != "" {
		p, err := parsePlatform(ps)
		if err != nil {
			return err
		}
		ctx = context.WithValue(ctx, platformKey{}, p)
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	req, err := decodeCreateRequest(r.Body)
	if err != nil {
		return err
	}
	resp, err := b.ContainerCreate(ctx, name, req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	opts, err := parseListOptions(r.URL.Query())
	if err != nil {
		return err
	}
	list, err := b.ContainerList(r.Context(), opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func parseListOptions(q url.Values) (ListOptions, error) {
	opts := ListOptions{All: boolValue(q, "all"), Size: boolValue(q, "size")}
	var err error
	if opts.Limit, err = intValue(q, "limit", 0); err != nil {
		return opts, err
	}
	if opts.Filters, err = parseFilters(q.Get("filters")); err != nil {
		return opts, err
	}
	return opts, nil
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	resp, err := b.ContainerInspect(r.Context(), p["name"], boolValue(r.URL.Query(), "size"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// containerStart serves POST /containers/{name}/start. The detachKeys
// parameter belongs to a following attach; like dockerd, start ignores it.
func (s *Server) containerStart(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	// API 1.24 removed the start body (HostConfig); dockerd accepts only an
	// empty body or "null".
	if r.Body != nil && r.ContentLength != 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody))
		if err != nil {
			return fmt.Errorf("read start request body: %w", err)
		}
		if t := string(bytes.TrimSpace(body)); t != "" && t != "null" {
			return invalidParameterf("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
		}
	}
	if err := b.ContainerStart(r.Context(), p["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	timeout, err := optionalInt(q, "t")
	if err != nil {
		return err
	}
	if err := b.ContainerStop(r.Context(), p["name"], q.Get("signal"), timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	timeout, err := optionalInt(q, "t")
	if err != nil {
		return err
	}
	if err := b.ContainerRestart(r.Context(), p["name"], q.Get("signal"), timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	if err := b.ContainerKill(r.Context(), p["name"], r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := RemoveOptions{
		Force:         boolValue(q, "force"),
		RemoveVolumes: boolValue(q, "v"),
		RemoveLink:    boolValue(q, "link"),
	}
	if err := b.ContainerRemove(r.Context(), p["name"], opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func parseWaitCondition(v string) (container.WaitCondition, error) {
	switch c := container.WaitCondition(v); c {
	case "":
		return container.WaitConditionNotRunning, nil
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
		return c, nil
	}
	return "", invalidParameterf("invalid condition: %q", v)
}

// containerWait answers the headers at once and the result when the
// condition is met: the CLI starts the container only after this request
// has its response head, so the head must not wait for the exit.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	cond, err := parseWaitCondition(r.URL.Query().Get("condition"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	ch, err := b.ContainerWait(ctx, p["name"], cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	select {
	case resp, ok := <-ch:
		if !ok {
			resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without a result"}}
		}
		_ = json.NewEncoder(w).Encode(resp)
	case <-ctx.Done():
	}
	return nil
}

// containerAttach serves POST /containers/{name}/attach. The backend
// calls GetStreams once it knows the container exists and whether it has
// a TTY; only then is the connection hijacked, so that errors before that
// point are ordinary JSON errors.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ss := &streamSession{srv: s, w: w, r: r}
	opts := AttachOptions{
		GetStreams: ss.get,
		UseStdin:   boolValue(q, "stdin"),
		UseStdout:  boolValue(q, "stdout"),
		UseStderr:  boolValue(q, "stderr"),
		Logs:       boolValue(q, "logs"),
		Stream:     boolValue(q, "stream"),
		DetachKeys: q.Get("detachKeys"),
	}
	err = b.ContainerAttach(r.Context(), p["name"], opts)
	hc := ss.conn()
	if hc == nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("attach to %s: the backend returned without streams", p["name"])
	}
	if err != nil {
		s.log.Warn("attach session ended with an error", "container", p["name"], "err", err)
	}
	hc.close()
	return nil
}

// streamContentType is the media type of a log or exec stream.
func streamContentType(ctx context.Context, multiplexed bool) string {
	if multiplexed && compareVersions(requestVersion(ctx), "1.42") >= 0 {
		return types.MediaTypeMultiplexedStream
	}
	return types.MediaTypeRawStream
}

func parseLogsOptions(q url.Values) (LogsOptions, error) {
	opts := LogsOptions{
		ShowStdout: boolValue(q, "stdout"),
		ShowStderr: boolValue(q, "stderr"),
		Timestamps: boolValue(q, "timestamps"),
		Follow:     boolValue(q, "follow"),
		Details:    boolValue(q, "details"),
		Tail:       q.Get("tail"),
	}
	if !opts.ShowStdout && !opts.ShowStderr {
		return opts, invalidParameterf("Bad parameters: you must choose at least one stream")
	}
	var err error
	if opts.Since, err = parseTimestamp(q.Get("since")); err != nil {
		return opts, err
	}
	if opts.Until, err = parseTimestamp(q.Get("until")); err != nil {
		return opts, err
	}
	switch opts.Tail {
	case "", "all":
		opts.Tail = "all"
	default:
		if n, err := strconv.Atoi(opts.Tail); err != nil || n < 0 {
			// dockerd treats an unparsable tail as "all".
			opts.Tail = "all"
		}
	}
	return opts, nil
}

// timestampFormat is the fixed-width RFC 3339 layout of log timestamps.
const timestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// containerLogs streams a container's log: stdcopy frames unless the
// container has a TTY, flushed after every message.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	opts, err := parseLogsOptions(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	msgs, tty, err := b.ContainerLogs(ctx, p["name"], opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", streamContentType(ctx, !tty))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	out := &flushWriter{w: w, rc: rc}
	var stdout, stderr io.Writer = out, out
	if !tty {
		stdout = &frameWriter{w: out, stream: streamStdout}
		stderr = &frameWriter{w: out, stream: streamStderr}
	}
	for {
		var msg LogMessage
		var ok bool
		select {
		case msg, ok = <-msgs:
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			if opts.Follow {
				return nil
			}
			msg, ok = <-msgs
		}
		if !ok {
			return nil
		}
		if msg.Err != nil {
			_, _ = fmt.Fprintf(stdout, "Error grabbing logs: %v\n", msg.Err)
			continue
		}
		line := msg.Line
		if opts.Timestamps {
			line = append([]byte(msg.Timestamp.UTC().Format(timestampFormat)+" "), line...)
		}
		var werr error
		switch msg.Stream {
		case "stdout":
			if opts.ShowStdout {
				_, werr = stdout.Write(line)
			}
		case "stderr":
			if opts.ShowStderr {
				_, werr = stderr.Write(line)
			}
		}
		if werr != nil {
			return nil // the client left
		}
	}
}

// flushWriter flushes the response after every write.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}

// frameWriter writes stdcopy frames: a header of the stream id, three
// zero bytes and the big-endian payload length, then the payload. Each
// frame is a single Write to w, so frames of two streams sharing a
// serialized w never interleave.
type frameWriter struct {
	w      io.Writer
	stream byte
}

func (f *frameWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		frame := make([]byte, 8+len(chunk))
		frame[0] = f.stream
		binary.BigEndian.PutUint32(frame[4:8], uint32(len(chunk)))
		copy(frame[8:], chunk)
		if _, err := f.w.Write(frame); err != nil {
			return written, fmt.Errorf("write %s frame: %w", streamName(f.stream), err)
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	resp, err := b.ContainerTop(r.Context(), p["name"], r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	newName := r.URL.Query().Get("name")
	if newName == "" {
		return invalidParameterf("Neither old nor new names may be empty")
	}
	if err := checkContainerName(newName); err != nil {
		return err
	}
	if err := b.ContainerRename(r.Context(), p["name"], newName); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerPause(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	if err := b.ContainerPause(r.Context(), p["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	if err := b.ContainerUnpause(r.Context(), p["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseSize reads the h and w query parameters of a resize.
func parseSize(q url.Values) (height, width uint, err error) {
	h, err := strconv.ParseUint(q.Get("h"), 10, 32)
	if err != nil {
		return 0, 0, invalidParameterf("invalid resize height %q: %w", q.Get("h"), err)
	}
	wd, err := strconv.ParseUint(q.Get("w"), 10, 32)
	if err != nil {
		return 0, 0, invalidParameterf("invalid resize width %q: %w", q.Get("w"), err)
	}
	return uint(h), uint(wd), nil
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	h, wd, err := parseSize(r.URL.Query())
	if err != nil {
		return err
	}
	if err := b.ContainerResize(r.Context(), p["name"], h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request, p params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type"), r.ContentLength != 0); err != nil {
		return err
	}
	update, err := decodeUpdate(r.Body)
	if err != nil {
		return err
	}
	resp, err := b.ContainerUpdate(r.Context(), p["name"], update)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := s.containerBackend()
	if err != nil {
		return err
	}
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	report, err := b.ContainerPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if report == nil {
		report = &container.PruneReport{}
	}
	if report.ContainersDeleted == nil {
		report.ContainersDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, report)
}
