package link

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Engine states reported by GET /status.
const (
	EngineStarting = "starting"
	EngineReady    = "ready"
	EngineFailed   = "failed"
)

// Status is the body of GET /status.
type Status struct {
	State         string            `json:"state"`
	Engine        string            `json:"engine"`
	Versions      map[string]string `json:"versions"`
	UptimeSeconds float64           `json:"uptimeSeconds"`
	// Memory of the VM from /proc/meminfo, in bytes (0 when unreadable).
	MemTotalBytes     uint64 `json:"memTotalBytes,omitempty"`
	MemAvailableBytes uint64 `json:"memAvailableBytes,omitempty"`
}

// VolumeEntry is one item of GET /volumes/{name}/files.
type VolumeEntry struct {
	Name     string    `json:"name"`
	Dir      bool      `json:"dir"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// DiskUsage is the body of GET /disk.
type DiskUsage struct {
	DataRoot   string `json:"dataRoot"`
	TotalBytes uint64 `json:"totalBytes"`
	UsedBytes  uint64 `json:"usedBytes"`
	FreeBytes  uint64 `json:"freeBytes"`
}

// TimeRequest is the body of POST /time.
type TimeRequest struct {
	UnixNano int64 `json:"unixNano"`
}

// System is what the control API needs of the guest; pid1 implements it.
type System interface {
	EngineState() string
	Uptime() time.Duration
	DiskUsage() (DiskUsage, error)
	SetClock(t time.Time) error
	// Shutdown starts an orderly poweroff and returns at once.
	Shutdown()
}

// Control serves the control API (HTTP/1.1 + JSON) on port 1024.
type Control struct {
	Sys      System
	Ports    PortEventSource // may be nil: /events then only keeps the stream open
	Versions map[string]string
	Log      *slog.Logger
	// Meminfo is read for the memory in GET /status; "" is /proc/meminfo.
	Meminfo string
	// VolumesRoot holds the engine's volumes (<name>/_data), browsed by
	// GET /volumes/{name}/files; "" answers 404.
	VolumesRoot string

	once sync.Once
	ln   *connListener
	srv  *http.Server
}

// Handler returns the control API's HTTP handler.
func (c *Control) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", c.status)
	mux.HandleFunc("GET /disk", c.disk)
	mux.HandleFunc("POST /time", c.setTime)
	mux.HandleFunc("POST /shutdown", c.shutdown)
	mux.HandleFunc("GET /events", c.events)
	mux.HandleFunc("GET /engine/config", c.engineConfig)
	mux.HandleFunc("PUT /engine/config", c.putEngineConfig)
	mux.HandleFunc("POST /disk/grow", c.growDisk)
	mux.HandleFunc("GET /volumes/{name}/files", c.volumeFiles)
	return mux
}

// ServeConn serves the control API on one channel connection; it is the
// port 1024 Handler.
func (c *Control) ServeConn(conn net.Conn) {
	c.once.Do(func() {
		c.ln = newConnListener()
		c.srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 30 * time.Second}
		go c.srv.Serve(c.ln)
	})
	if !c.ln.push(conn) {
		conn.Close()
	}
}

// Close stops serving and closes the connections being served.
func (c *Control) Close() error {
	if c.srv == nil {
		return nil
	}
	return c.srv.Close()
}

func (c *Control) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"message": err.Error()})
}

func (c *Control) status(w http.ResponseWriter, r *http.Request) {
	st := Status{
		State:         "running",
		Engine:        c.Sys.EngineState(),
		Versions:      c.Versions,
		UptimeSeconds: c.Sys.Uptime().Seconds(),
	}
	path := c.Meminfo
	if path == "" {
		path = "/proc/meminfo"
	}
	if b, err := os.ReadFile(path); err == nil {
		st.MemTotalBytes, st.MemAvailableBytes = parseMeminfo(b)
	}
	writeJSON(w, http.StatusOK, st)
}

// parseMeminfo reads MemTotal and MemAvailable (kB) from /proc/meminfo.
func parseMeminfo(b []byte) (total, avail uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = n * 1024
		case "MemAvailable:":
			avail = n * 1024
		}
	}
	return total, avail
}

// maxVolumeEntries bounds one listing of a volume's folder.
const maxVolumeEntries = 5000

// volumeFiles lists one folder of a volume (?path=, relative to the
// volume's root), without following symbolic links out of the volume:
// the folder is opened through an os.Root at the volume's data.
func (c *Control) volumeFiles(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if c.VolumesRoot == "" || name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such volume: %s", name))
		return
	}
	root, err := os.OpenRoot(filepath.Join(c.VolumesRoot, name, "_data"))
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such volume: %s", name))
		return
	}
	defer root.Close()
	rel := strings.Trim(filepath.Clean("/"+r.URL.Query().Get("path")), "/")
	if rel == "" {
		rel = "."
	}
	dir, err := root.Open(rel)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("volume %s: %w", name, err))
		return
	}
	defer dir.Close()
	infos, err := dir.Readdir(maxVolumeEntries)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("volume %s: %s is not a folder: %w", name, rel, err))
		return
	}
	out := make([]VolumeEntry, 0, len(infos))
	for _, fi := range infos {
		out = append(out, VolumeEntry{Name: fi.Name(), Dir: fi.IsDir(), Size: fi.Size(), Modified: fi.ModTime().UTC()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir
		}
		return out[i].Name < out[j].Name
	})
	writeJSON(w, http.StatusOK, out)
}

func (c *Control) disk(w http.ResponseWriter, r *http.Request) {
	u, err := c.Sys.DiskUsage()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// maxBody bounds request bodies of the control API.
const maxBody = 4096

// DecodeTimeRequest parses the body of POST /time.
func DecodeTimeRequest(body []byte) (time.Time, error) {
	var req TimeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return time.Time{}, fmt.Errorf("decode time request: %w", err)
	}
	if req.UnixNano <= 0 {
		return time.Time{}, errors.New("decode time request: unixNano must be positive")
	}
	return time.Unix(0, req.UnixNano), nil
}

func (c *Control) setTime(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, maxBody+1)
	n, _ := readFull(http.MaxBytesReader(w, r.Body, maxBody), body)
	t, err := DecodeTimeRequest(body[:n])
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := c.Sys.SetClock(t); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("set clock: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *Control) shutdown(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusAccepted)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	c.log().Info("link: shutdown requested by host")
	c.Sys.Shutdown()
}

func (c *Control) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	if c.Ports == nil {
		<-r.Context().Done()
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	enc := json.NewEncoder(w)
	for e := range c.Ports.SubscribePorts(ctx) {
		if err := enc.Encode(e); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func readFull(r interface{ Read([]byte) (int, error) }, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// connListener is a net.Listener fed with connections by the transports, so
// one http.Server serves every control connection.
type connListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return channelAddr{} }

type channelAddr struct{}

func (channelAddr) Network() string { return "berth-link" }
func (channelAddr) String() string  { return "control" }
