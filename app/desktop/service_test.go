package desktop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// fakeVM is a machine.VM whose guest is two HTTP servers on unix sockets:
// the control API (port 1024) and a Docker API answering /_ping (2375).
type fakeVM struct {
	t        *testing.T
	dir      string
	engine   string // what /status reports
	startErr error

	mu        sync.Mutex
	state     machine.State
	done      chan struct{}
	err       error
	shutdowns int
	stops     int
	servers   []*http.Server
	// The engine's daemon.json (GET/PUT /engine/config; a document with
	// "fail" in it does not start), the puts, the disk size asked of
	// ResizeDisk and the POST /disk/grow calls.
	engineDoc []byte
	puts      int
	diskSize  int64
	grows     int
}

// ResizeDisk implements machine.DiskResizer.
func (v *fakeVM) ResizeDisk(ctx context.Context, size int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.diskSize = size
	return nil
}

func newFakeVM(t *testing.T, engine string) *fakeVM {
	dir, err := os.MkdirTemp("", "fakevm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &fakeVM{t: t, dir: dir, engine: engine, state: machine.StateStopped, done: make(chan struct{})}
}

func (v *fakeVM) serve(name string, h http.Handler) {
	ln, err := net.Listen("unix", filepath.Join(v.dir, name))
	if err != nil {
		v.t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	v.servers = append(v.servers, srv)
	go srv.Serve(ln)
}

func (v *fakeVM) Start(ctx context.Context) error {
	if v.startErr != nil {
		return v.startErr
	}
	ctl := http.NewServeMux()
	ctl.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(hostlink.Status{State: "running", Engine: v.engine, Versions: hostlink.Versions{Agent: "test", Kernel: "6.1"}})
	})
	ctl.HandleFunc("POST /time", func(w http.ResponseWriter, r *http.Request) {})
	ctl.HandleFunc("GET /engine/config", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.engineDoc == nil {
			v.engineDoc = []byte("{}")
		}
		w.Write(v.engineDoc)
	})
	ctl.HandleFunc("PUT /engine/config", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		v.mu.Lock()
		defer v.mu.Unlock()
		v.puts++
		if bytes.Contains(b, []byte("fail")) {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"message":"the engine did not start with the new daemon.json: exited with status 1; the previous configuration is back"}`)
			return
		}
		v.engineDoc = b
		fmt.Fprint(w, `{"changed":true,"engine":"ready"}`)
	})
	ctl.HandleFunc("POST /disk/grow", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.grows++
		fmt.Fprintf(w, `{"dataRoot":"/var/lib/berth","totalBytes":%d,"freeBytes":%d}`, v.diskSize, v.diskSize/2)
	})
	ctl.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.shutdowns++
		v.mu.Unlock()
		go v.end(nil)
	})
	ctl.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	v.serve("1024", ctl)
	docker := http.NewServeMux()
	docker.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "OK") })
	v.serve("2375", docker)
	v.mu.Lock()
	v.state = machine.StateRunning
	v.mu.Unlock()
	return nil
}

// end makes the VM process end: asked (err nil) or crashed.
func (v *fakeVM) end(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-v.done:
		return
	default:
	}
	for _, s := range v.servers {
		s.Close()
	}
	v.err = err
	v.state = machine.StateStopped
	if err != nil {
		v.state = machine.StateCrashed
	}
	close(v.done)
}

func (v *fakeVM) Stop(ctx context.Context) error {
	v.mu.Lock()
	v.stops++
	st := v.state
	v.mu.Unlock()
	if st != machine.StateRunning {
		return machine.ErrNotRunning
	}
	v.end(nil)
	return nil
}

func (v *fakeVM) State() machine.State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

func (v *fakeVM) Done() <-chan struct{} { return v.done }

func (v *fakeVM) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *fakeVM) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join(v.dir, fmt.Sprint(port)))
}

func newTestService(t *testing.T, vm *fakeVM) (*Service, string) {
	dir, err := os.MkdirTemp("", "desktop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	svc := NewService(Options{
		NewVM:        func() (machine.VM, error) { return vm, nil },
		DockerSocket: sock,
		DockerConfig: filepath.Join(dir, "docker"),
		StopTimeout:  5 * time.Second,
	})
	return svc, sock
}

func TestServiceLifecycle(t *testing.T) {
	vm := newFakeVM(t, hostlink.EngineReady)
	svc, sock := newTestService(t, vm)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st := svc.Status(); st.State != StateStopped {
		t.Fatalf("new service: %s", st.State)
	}
	if err := svc.Stop(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Stop of a stopped service: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := svc.Status()
	if st.State != StateRunning || st.Socket != sock || st.Engine != hostlink.EngineReady || st.Versions.Agent != "test" {
		t.Fatalf("after Start: %+v", st)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("docker socket: %v", err)
	}
	if err := svc.Start(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Start: %v", err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := svc.Status(); st.State != StateStopped || st.Socket != "" {
		t.Fatalf("after Stop: %+v", st)
	}
	if vm.shutdowns != 1 {
		t.Errorf("guest shutdown requests: %d, want 1", vm.shutdowns)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("docker socket left after Stop: %v", err)
	}
}

func TestServiceStartFails(t *testing.T) {
	tests := []struct {
		name     string
		engine   string
		startErr error
		wantErr  error
		wantHint string
	}{
		{name: "no hypervisor", engine: hostlink.EngineReady, startErr: fmt.Errorf("find qemu: %w", machine.ErrNotAvailable), wantErr: machine.ErrNotAvailable, wantHint: "install QEMU"},
		{name: "engine failed", engine: hostlink.EngineFailed, wantErr: hostlink.ErrEngineFailed, wantHint: "berth logs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := newFakeVM(t, tt.engine)
			vm.startErr = tt.startErr
			svc, sock := newTestService(t, vm)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := svc.Start(ctx)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Start: %v, want %v", err, tt.wantErr)
			}
			st := svc.Status()
			if st.State != StateError || st.Error == "" || !strings.Contains(st.Hint, tt.wantHint) {
				t.Fatalf("status %+v, want error with hint %q", st, tt.wantHint)
			}
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("docker socket left after a failed start: %v", err)
			}
			// From error, Stop settles to stopped.
			if err := svc.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if st := svc.Status(); st.State != StateStopped {
				t.Fatalf("after Stop from error: %s", st.State)
			}
		})
	}
}

func TestServiceVMCrash(t *testing.T) {
	vm := newFakeVM(t, hostlink.EngineReady)
	svc, sock := newTestService(t, vm)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	changed := svc.Changed()
	vm.end(fmt.Errorf("berth: %w: qemu killed", machine.ErrCrashed))
	for svc.Status().State != StateError {
		select {
		case <-changed:
			changed = svc.Changed()
		case <-ctx.Done():
			t.Fatalf("crash not reported: %+v", svc.Status())
		}
	}
	st := svc.Status()
	if !strings.Contains(st.Error, "crashed") || st.Hint == "" || st.Socket != "" {
		t.Fatalf("status after crash: %+v", st)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("docker socket left after a crash: %v", err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if svc.Status().State != StateStopped {
		t.Fatalf("after Stop: %+v", svc.Status())
	}
}

func TestControlSocket(t *testing.T) {
	home, err := os.MkdirTemp("", "home")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	l := Layout{Home: home}
	ctx := context.Background()
	if ds := Inspect(ctx, l); ds.State != StateStopped {
		t.Fatalf("nothing running: %+v", ds)
	}
	vm := newFakeVM(t, hostlink.EngineReady)
	svc, _ := newTestService(t, vm)
	ctl, err := ListenControl(l, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	go ctl.Serve()
	if _, err := ListenControl(l, svc, nil); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second control socket: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ds := Inspect(ctx, l)
	if ds.State != StateRunning || ds.PID != os.Getpid() || ds.Home != home {
		t.Fatalf("running: %+v", ds)
	}
	c := NewControlClient(l)
	defer c.Close()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctl.StopRequested():
	case <-time.After(time.Minute):
		t.Fatal("stop request not delivered")
	}
	svc.Stop(ctx)
	ctl.Close()
	if ds := Inspect(ctx, l); ds.State != StateStopped {
		t.Fatalf("after close: %+v", ds)
	}

	// A pid file whose process is gone reads as a crash.
	os.WriteFile(l.PIDFile(), []byte("999999999\n"), 0o600)
	if ds := Inspect(ctx, l); ds.State != StateError || !strings.Contains(ds.Error, "ended without stopping") {
		t.Fatalf("dead service process: %+v", ds)
	}
	os.Remove(l.PIDFile())
	WriteLastError(l, Status{State: StateError, Error: "boom", Hint: "retry"})
	if ds := Inspect(ctx, l); ds.State != StateError || ds.Error != "boom" || ds.Hint != "retry" {
		t.Fatalf("recorded error: %+v", ds)
	}
}

func TestFindVMDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BERTH_VM_DIR", dir)
	if _, err := FindVMDir(); !errors.Is(err, ErrNoVMImage) {
		t.Fatalf("empty folder: %v", err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if got, err := FindVMDir(); err != nil || got != dir {
		t.Fatalf("FindVMDir = %q, %v", got, err)
	}
}

func TestMachineConfig(t *testing.T) {
	l := Layout{Home: "/h"}
	cfg := MachineConfig(l, Settings{CPUs: 2, MemoryMiB: 2048, DiskBytes: DefaultDiskBytes, Shares: []string{"/home/u"}, VMDir: "/img"})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Kernel != "/img/vmlinuz" || cfg.Disk.Path != "/h/vm/data.img" || cfg.Shares[0].GuestPath != "/home/u" || cfg.StateDir != "/h/vm" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestServiceCrashWhileBooting(t *testing.T) {
	vm := newFakeVM(t, hostlink.EngineStarting)
	svc, _ := newTestService(t, vm)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		// The guest agent answers "starting"; then QEMU dies.
		for svc.Status().Engine != hostlink.EngineStarting {
			<-svc.Changed()
		}
		vm.end(fmt.Errorf("berth: %w: qemu exit 1", machine.ErrCrashed))
	}()
	err := svc.Start(ctx)
	if !errors.Is(err, machine.ErrCrashed) || ctx.Err() != nil {
		t.Fatalf("Start: %v (ctx %v), want the crash", err, ctx.Err())
	}
	if st := svc.Status(); st.State != StateError || !strings.Contains(st.Error, "while booting") {
		t.Fatalf("status %+v", st)
	}
}
