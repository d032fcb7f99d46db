// Package ui is the desktop app's backend: the only package bound to
// Wails. App's exported methods are what the frontend calls
// (frontend/src/api.ts is their other half), its events are what the
// frontend hears. Every method is a thin call into app/desktop or the
// berth CLI (lifecycle commands run as `berth start`, `berth stop`, ..., so
// the window and the terminal do exactly the same thing), and engine data
// is the Docker Engine API through the forwarded docker socket.
package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/settings"
)

// Host is what App needs of the window system; Wails provides it in the
// app, a fake in tests.
type Host interface {
	// Emit sends an event to the frontend.
	Emit(name string, data ...any)
	// PickFolder shows the native folder picker; "" when cancelled.
	PickFolder(title string) (string, error)
	// OpenURL opens a URL in the user's browser.
	OpenURL(url string)
}

// CLI runs the berth command line program with args, sending each line
// it prints to line, and returns its error (with what it printed on
// stderr) when it fails.
type CLI interface {
	Run(ctx context.Context, line func(string), args ...string) error
}

// Options configure an App.
type Options struct {
	Layout desktop.Layout
	Files  desktop.Files
	Store  *settings.Store
	CLI    CLI
	// LoginCommand is the program the login entry runs as `<it> start`
	// when start at login is on: the berth command, so the VM comes up
	// with the session as it would from the command line. "" is the
	// running program.
	LoginCommand string
	// StatusInterval is how often the service's status is read while the
	// window is open; 0 is one second.
	StatusInterval time.Duration
}

// App is bound to the frontend.
type App struct {
	opts   Options
	host   Host
	docker *dockerClient

	mu     sync.Mutex
	status Status
	last   string        // the status last emitted, as JSON
	change chan struct{} // closed and replaced at every change

	streams sync.Map // id -> context.CancelFunc
	execs   sync.Map // id -> *execSession
	nextID  atomicCounter
	// op serialises the lifecycle commands and the settings' apply.
	op sync.Mutex
}

// New returns an App; Attach gives it its Host before the window shows.
func New(opts Options) *App {
	if opts.StatusInterval == 0 {
		opts.StatusInterval = time.Second
	}
	return &App{opts: opts, docker: newDockerClient(opts.Layout.DockerSocket()), status: Status{State: desktop.StateStopped}, change: make(chan struct{})}
}

// Status is what the Status screen shows: the service's state (as `berth
// status` reports it) and the VM's resources.
type Status struct {
	State     desktop.State     `json:"state"`
	Message   string            `json:"message,omitempty"`
	Error     string            `json:"error,omitempty"`
	Hint      string            `json:"hint,omitempty"`
	Warning   string            `json:"warning,omitempty"`
	Socket    string            `json:"socket,omitempty"`
	Versions  Versions          `json:"versions"`
	Resources desktop.Resources `json:"resources"`
	Since     string            `json:"since"`
}

// Versions of the running software.
type Versions struct {
	Agent  string `json:"agent,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	Engine string `json:"engine,omitempty"`
}

func statusOf(ds desktop.DaemonStatus) Status {
	st := Status{State: ds.State, Message: ds.Message, Error: ds.Error, Hint: ds.Hint, Warning: ds.Warning, Socket: ds.Socket,
		Versions: Versions{Agent: ds.Versions.Agent, Kernel: ds.Versions.Kernel, Engine: ds.Engine}, Resources: ds.Resources}
	if !ds.Since.IsZero() {
		st.Since = ds.Since.UTC().Format(time.RFC3339)
	}
	return st
}

// run reads the service's status until ctx ends, emitting "status" at
// every change. The app starts it once the window is up.
func (a *App) run(ctx context.Context, h Host) {
	a.mu.Lock()
	a.host = h
	a.mu.Unlock()
	t := time.NewTicker(a.opts.StatusInterval)
	defer t.Stop()
	for {
		a.refreshStatus(ctx)
		select {
		case <-ctx.Done():
			a.closeAll()
			return
		case <-t.C:
		}
	}
}

func (a *App) refreshStatus(ctx context.Context) Status {
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	st := statusOf(desktop.Inspect(sctx, a.opts.Layout))
	cancel()
	b, _ := json.Marshal(st)
	a.mu.Lock()
	a.status = st
	changed := string(b) != a.last
	a.last = string(b)
	if changed {
		close(a.change)
		a.change = make(chan struct{})
	}
	a.mu.Unlock()
	if changed {
		a.emit("status", st)
	}
	return st
}

func (a *App) emit(name string, data ...any) {
	a.mu.Lock()
	h := a.host
	a.mu.Unlock()
	if h != nil {
		h.Emit(name, data...)
	}
}

// statusChanged is closed at the next change of the status.
func (a *App) statusChanged() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.change
}

// current is the status last read.
func (a *App) current() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// Status returns the service's status, read now.
func (a *App) Status() Status {
	return a.refreshStatus(context.Background())
}

// Start starts Berth as `berth start` does, with its progress lines as
// "progress" events; it returns once docker answers.
func (a *App) Start() error { return a.lifecycle("start") }

// Stop stops Berth as `berth stop` does.
func (a *App) Stop() error { return a.lifecycle("stop") }

// Restart restarts Berth as `berth restart` does.
func (a *App) Restart() error { return a.lifecycle("restart") }

func (a *App) lifecycle(args ...string) error {
	a.op.Lock()
	defer a.op.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { // the status screen follows the start as it goes
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				a.refreshStatus(ctx)
			}
		}
	}()
	err := a.opts.CLI.Run(ctx, func(l string) { a.emit("progress", l) }, args...)
	close(done)
	a.refreshStatus(ctx)
	if err != nil {
		return fmt.Errorf("berth %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// VolumeFiles lists a folder of a volume (path relative to its root).
func (a *App) VolumeFiles(volume, path string) ([]hostlink.VolumeEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := desktop.NewControlClient(a.opts.Layout)
	defer c.Close()
	return c.VolumeFiles(ctx, volume, path)
}

// OpenURL opens an http(s) URL (a published port) in the browser.
func (a *App) OpenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("not a web address: %q", raw)
	}
	a.mu.Lock()
	h := a.host
	a.mu.Unlock()
	if h == nil {
		return errors.New("no window")
	}
	h.OpenURL(u.String())
	return nil
}

// PickFolder shows the native folder picker; "" when cancelled.
func (a *App) PickFolder(title string) (string, error) {
	a.mu.Lock()
	h := a.host
	a.mu.Unlock()
	if h == nil {
		return "", errors.New("no window")
	}
	return h.PickFolder(title)
}

// maxLog bounds the log text Logs returns.
const maxLog = 256 << 10

// Logs returns the end of the VM's console log ("vm") or the service's
// log ("service").
func (a *App) Logs(which string) (string, error) {
	var p string
	switch which {
	case "vm":
		p = a.opts.Layout.ConsoleLog()
	case "service":
		p = a.opts.Layout.DaemonLog()
	default:
		return "", fmt.Errorf("no log named %q (vm or service)", which)
	}
	b, cut, err := desktop.Tail(p, maxLog)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s := string(b)
	if cut {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s, nil
}

// hostCPUs is the most CPUs a VM may have.
func hostCPUs() int { return runtime.NumCPU() }

// atomicCounter numbers streams and exec sessions.
type atomicCounter struct{ n atomic.Uint64 }

func (c *atomicCounter) next(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, c.n.Add(1))
}

// closeAll ends the streams and execs when the window goes.
func (a *App) closeAll() {
	a.streams.Range(func(k, v any) bool { v.(context.CancelFunc)(); a.streams.Delete(k); return true })
	a.execs.Range(func(k, v any) bool { v.(*execSession).close(); a.execs.Delete(k); return true })
}
