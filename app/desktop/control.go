package desktop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/settings"
)

// DaemonStatus is what the control socket reports: the service's Status
// and the processes behind it.
type DaemonStatus struct {
	Status
	// PID is the service process; QEMUPID the VM's process, when known.
	PID     int    `json:"pid"`
	VMPID   int    `json:"vmPid,omitempty"`
	Home    string `json:"home"`
	Console string `json:"consoleLog"`
	Log     string `json:"daemonLog"`
}

// pider is implemented by VMs that know their process ID.
type pider interface{ PID() int }

// ControlServer serves the control API of a service process on a unix
// socket: GET /status (DaemonStatus as JSON) and POST /stop (stop the
// service; the process then ends).
type ControlServer struct {
	svc    *Service
	layout Layout
	srv    *http.Server
	ln     net.Listener
	stopCh chan struct{}
}

// ListenControl creates the control socket (mode 0600) and the pid file.
// It fails with ErrAlreadyRunning when a live service answers on it.
func ListenControl(l Layout, svc *Service, log *slog.Logger) (*ControlServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := l.ControlSocket()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, ErrAlreadyRunning)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.WriteFile(l.PIDFile(), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	c := &ControlServer{svc: svc, layout: l, ln: ln, stopCh: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /volumes/{name}/files", func(w http.ResponseWriter, r *http.Request) {
		files, err := svc.VolumeFiles(r.Context(), r.PathValue("name"), r.URL.Query().Get("path"))
		var se *hostlink.StatusError
		switch {
		case errors.Is(err, ErrNotRunning):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.As(err, &se):
			http.Error(w, se.Message(), se.Code)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(files)
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		if err := svc.Refresh(rctx); err != nil {
			log.Warn("status: guest did not answer", "err", err)
		}
		cancel()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.daemonStatus())
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-c.stopCh:
		default:
			close(c.stopCh)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /apply", c.apply)
	c.srv = &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ReadHeaderTimeout: 10 * time.Second}
	return c, nil
}

func (c *ControlServer) daemonStatus() DaemonStatus {
	ds := DaemonStatus{Status: c.svc.Status(), PID: os.Getpid(), Home: c.layout.Home, Console: c.layout.ConsoleLog(), Log: c.layout.DaemonLog()}
	if p, ok := c.svc.VM().(pider); ok {
		ds.VMPID = p.PID()
	}
	return ds
}

// applyLine is one line of POST /apply's answer: progress lines, then one
// with the result or the error.
type applyLine struct {
	Progress   string       `json:"progress,omitempty"`
	Result     *ApplyResult `json:"result,omitempty"`
	Error      string       `json:"error,omitempty"`
	NotRunning bool         `json:"notRunning,omitempty"`
	RolledBack bool         `json:"rolledBack,omitempty"`
}

// apply serves POST /apply: the body is the next settings document, the
// answer a stream of JSON lines (applyLine).
func (c *ControlServer) apply(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	next, err := settings.Parse(data, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	send := func(l applyLine) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(l)
		if flusher != nil {
			flusher.Flush()
		}
	}
	// The change goes on when the client leaves: a VM half restarted
	// helps no one.
	res, err := c.svc.Apply(context.WithoutCancel(r.Context()), next, func(m string) { send(applyLine{Progress: m}) })
	if err != nil {
		send(applyLine{Error: err.Error(), NotRunning: errors.Is(err, ErrNotRunning), RolledBack: errors.Is(err, ErrRolledBack)})
		return
	}
	send(applyLine{Result: &res})
}

// StopRequested is closed when a client asked POST /stop.
func (c *ControlServer) StopRequested() <-chan struct{} { return c.stopCh }

// Serve answers until Close.
func (c *ControlServer) Serve() error {
	err := c.srv.Serve(c.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving and removes the socket and the pid file.
func (c *ControlServer) Close() error {
	os.Remove(c.layout.PIDFile())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.srv.Shutdown(ctx)
}

// ErrNoDaemon is returned by the control client when no service process
// answers.
var ErrNoDaemon = errors.New("no berth service process answers")

// ControlClient talks to a service process's control socket.
type ControlClient struct {
	http *http.Client
	path string
}

// NewControlClient returns a client of the control socket of l.
func NewControlClient(l Layout) *ControlClient {
	path := l.ControlSocket()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &ControlClient{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}, path: path}
}

// Status asks the service process for its status; ErrNoDaemon when none
// answers.
func (c *ControlClient) Status(ctx context.Context) (DaemonStatus, error) {
	var ds DaemonStatus
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://berth/status", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return ds, fmt.Errorf("%w at %s: %w", ErrNoDaemon, c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return ds, fmt.Errorf("control status: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ds); err != nil {
		return ds, fmt.Errorf("control status: %w", err)
	}
	return ds, nil
}

// Stop asks the service process to stop the VM and end.
func (c *ControlClient) Stop(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://berth/stop", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrNoDaemon, c.path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("control stop: %s", resp.Status)
	}
	return nil
}

// Apply asks the service process to apply the settings document next
// (settings.Document.Marshal) to the running VM, and passes each progress
// message to progress. It fails with ErrNotRunning when no VM runs (the
// caller saves next for the next start), with ErrRolledBack when the
// change failed and the previous settings are back.
func (c *ControlClient) Apply(ctx context.Context, next []byte, progress func(string)) (ApplyResult, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://berth/apply", bytes.NewReader(next))
	req.Header.Set("Content-Type", "application/json")
	long := &http.Client{Transport: c.http.Transport}
	resp, err := long.Do(req)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("%w at %s: %w", ErrNotRunning, c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return ApplyResult{}, fmt.Errorf("apply: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var l applyLine
		if err := dec.Decode(&l); err != nil {
			return ApplyResult{}, fmt.Errorf("apply: the service process did not say how it ended: %w", err)
		}
		switch {
		case l.Progress != "":
			if progress != nil {
				progress(l.Progress)
			}
		case l.Result != nil:
			return *l.Result, nil
		case l.NotRunning:
			return ApplyResult{}, fmt.Errorf("%s: %w", l.Error, ErrNotRunning)
		case l.RolledBack:
			return ApplyResult{}, &applyError{msg: l.Error, rolledBack: true}
		case l.Error != "":
			return ApplyResult{}, &applyError{msg: l.Error}
		}
	}
}

// applyError is a failed apply as the service process told it.
type applyError struct {
	msg        string
	rolledBack bool
}

func (e *applyError) Error() string { return e.msg }

func (e *applyError) Is(target error) bool { return e.rolledBack && target == ErrRolledBack }

// VolumeFiles lists a folder (path, relative to the volume's root) of the
// running engine's volume name.
func (c *ControlClient) VolumeFiles(ctx context.Context, name, path string) ([]hostlink.VolumeEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://berth/volumes/"+url.PathEscape(name)+"/files?path="+url.QueryEscape(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrNoDaemon, c.path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("volume %s: %s", name, bytes.TrimSpace(body))
	}
	var out []hostlink.VolumeEntry
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return out, nil
}

// Close drops idle connections.
func (c *ControlClient) Close() { c.http.CloseIdleConnections() }
