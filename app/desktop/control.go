package desktop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
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

// Close drops idle connections.
func (c *ControlClient) Close() { c.http.CloseIdleConnections() }
