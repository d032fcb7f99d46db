package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/common"
)

const (
	// APIVersion is the newest Docker Engine API version this server
	// speaks, and the one assumed for requests without a /vX.Y prefix.
	APIVersion = "1.51"
	// MinAPIVersion is the oldest API version accepted.
	MinAPIVersion = "1.24"
)

// Config wires a Server to its backends. A nil backend makes its routes
// answer 503 with a message naming the missing part.
type Config struct {
	// EngineVersion goes into the Server header: "Docker/<version> (linux)".
	EngineVersion string
	// BuilderVersion is announced by /_ping ("1" is the classic builder).
	// Empty means "1".
	BuilderVersion string

	System     SystemBackend
	Containers ContainerBackend
	Exec       ExecBackend
	Images     ImageBackend
	// Registry serves POST /auth and GET /distribution/{name}/json.
	Registry RegistryBackend
	// Volumes serves /volumes; Archive serves docker cp, export and diff;
	// both feed GET /system/df with Containers and Images.
	Volumes VolumeBackend
	Archive ArchiveBackend
	// Networks serves /networks.
	Networks NetworkBackend
	// Builder serves POST /build and /build/prune; nil answers 501.
	Builder BuildBackend

	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the Docker Engine API server. It is an http.Handler; Serve
// runs it on listeners and Shutdown stops it.
type Server struct {
	cfg    Config
	log    *slog.Logger
	routes []route

	httpSrv *http.Server

	// baseCtx is the parent of every request context; cancelling it ends
	// streams and hijacked sessions at a forced shutdown.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	// stopping is closed when Shutdown begins: endless streams (events,
	// followed logs) end then, so that graceful shutdown can complete.
	stopping chan struct{}
	stopOnce sync.Once

	// mu guards the hijacked sessions: their number (counted from just
	// before the hijack, while net/http still sees the request as active,
	// so that Shutdown cannot miss one), their connections, and a channel
	// closed whenever one ends.
	mu           sync.Mutex
	sessions     int
	hijacked     map[net.Conn]struct{}
	sessionEnded chan struct{}
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.BuilderVersion == "" {
		cfg.BuilderVersion = "1"
	}
	if cfg.EngineVersion == "" {
		cfg.EngineVersion = "dev"
	}
	s := &Server{
		cfg:          cfg,
		log:          cfg.Logger,
		stopping:     make(chan struct{}),
		hijacked:     map[net.Conn]struct{}{},
		sessionEnded: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.routes = s.buildRoutes()
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Serve accepts connections on l until Shutdown. It may be called for
// several listeners. It returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.httpSrv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve API on %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections, ends endless streams (events,
// followed logs), and waits for the other requests and hijacked sessions
// (attach, exec) to finish. When ctx ends first, it cancels every request,
// closes the hijacked connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	err := s.httpSrv.Shutdown(ctx)
	if err == nil {
		if err = s.waitSessions(ctx); err == nil {
			s.cancelBase()
			return nil
		}
	}
	// Forced: cancel every request and cut the hijacked connections.
	s.cancelBase()
	s.mu.Lock()
	for c := range s.hijacked {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.httpSrv.Close()
	if err != nil {
		return fmt.Errorf("shut down API server: %w", err)
	}
	return nil
}

// ServeHTTP sets the headers every dockerd response carries, strips and
// checks the /vX.Y prefix, and dispatches to the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", "Docker/"+s.cfg.EngineVersion+" (linux)")
	h.Set("Api-Version", APIVersion)
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")

	version, path := splitVersion(r.URL.Path)
	rt, params := matchRoute(s.routes, r.Method, path)
	s.log.Debug("API request", "method", r.Method, "path", r.URL.Path, "matched", rt != nil)
	if rt == nil {
		writeJSON(w, http.StatusNotFound, common.ErrorResponse{Message: errPageNotFound.Error()})
		return
	}
	if version == "" {
		version = APIVersion
	}
	var verr error
	switch {
	case compareVersions(version, MinAPIVersion) < 0:
		verr = invalidParameterf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinAPIVersion)
	case compareVersions(version, APIVersion) > 0:
		verr = invalidParameterf("client version %s is too new. Maximum supported API version is %s", version, APIVersion)
	}
	if verr != nil {
		s.writeError(w, r, version, verr)
		return
	}
	ctx := context.WithValue(r.Context(), versionKey{}, version)
	r = r.WithContext(ctx)
	if err := rt.handler(w, r, params); err != nil {
		s.writeError(w, r, version, err)
	}
}

// writeError answers with dockerd's error shape. Clients older than API
// 1.24 get plain text, as dockerd does, so that they can print it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, version string, err error) {
	status := statusFromError(err)
	if status >= http.StatusInternalServerError && status != http.StatusNotImplemented {
		s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("API request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	if compareVersions(version, MinAPIVersion) < 0 {
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, status, common.ErrorResponse{Message: err.Error()})
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON response: %w", err)
	}
	return nil
}

type versionKey struct{}

// requestVersion returns the API version of the request in ctx.
func requestVersion(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// splitVersion separates a /vX.Y prefix from path. A path that is only
// the prefix keeps it, so that it matches no route.
func splitVersion(path string) (version, rest string) {
	if len(path) < 3 || path[0] != '/' || path[1] != 'v' {
		return "", path
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return "", path
	}
	v := path[2 : end+1]
	if v == "" || strings.Trim(v, "0123456789.") != "" {
		return "", path
	}
	return v, path[end+1:]
}

// beginSession counts a hijacked session about to start; the returned
// func ends it and is safe to call more than once.
func (s *Server) beginSession() (end func()) {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.sessions--
			close(s.sessionEnded)
			s.sessionEnded = make(chan struct{})
			s.mu.Unlock()
		})
	}
}

// trackConn records the connection of a session, for a forced Shutdown to
// close; the returned func forgets it.
func (s *Server) trackConn(c net.Conn) (untrack func()) {
	s.mu.Lock()
	s.hijacked[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.hijacked, c)
		s.mu.Unlock()
	}
}

// waitSessions waits until no hijacked session is left or ctx ends.
func (s *Server) waitSessions(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ended := s.sessions, s.sessionEnded
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
