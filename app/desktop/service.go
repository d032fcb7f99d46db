package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/berthdesktop/berth/app/dockercli"
	"github.com/berthdesktop/berth/app/forward"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/settings"
)

// State is the service's life-cycle state.
type State string

// The service moves Stopped -> Starting -> Running -> Stopping -> Stopped;
// Error replaces Running or Starting when the VM or its engine fails, and
// Start or Stop may be asked from Error.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateError    State = "error"
)

// Status is a snapshot of the service for display.
type Status struct {
	State State `json:"state"`
	// Message is the last progress message while starting or stopping.
	Message string `json:"message,omitempty"`
	// Error is the reason of StateError, and Hint what the user can do.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	// Socket is the docker socket, once forwarded.
	Socket string `json:"socket,omitempty"`
	// Engine and Versions come from the guest's control API.
	Engine   string            `json:"engine,omitempty"`
	Versions hostlink.Versions `json:"versions"`
	// Warning tells of something that did not apply while the service
	// runs (the engine's configuration, say), with what to do.
	Warning string `json:"warning,omitempty"`
	// Resources is what the VM has and uses.
	Resources Resources `json:"resources"`
	// Since is when the current state began.
	Since time.Time `json:"since"`
}

// Resources are the VM's CPUs and memory in force and what it uses; the
// use is 0 when the guest has not said (not running).
type Resources struct {
	CPUs          int    `json:"cpus"`
	MemoryMiB     int    `json:"memoryMiB"`
	MemUsedMiB    uint64 `json:"memUsedMiB"`
	MemTotalMiB   uint64 `json:"memTotalMiB"`
	DiskUsedBytes uint64 `json:"diskUsedBytes"`
	DiskSizeBytes uint64 `json:"diskSizeBytes"`
}

// Options configure a Service.
type Options struct {
	// NewVM makes the VM to start (from machine.Hypervisor.New), unless
	// NewVMFor is set: that makes it from the settings in force, which
	// is what lets Apply restart the VM with new ones.
	NewVM    func() (machine.VM, error)
	NewVMFor func(*settings.Document) (machine.VM, error)
	// Settings are the settings the service starts with; their engine
	// section (with the proxies) is what the VM's engine runs with. Nil
	// leaves the engine's configuration alone.
	Settings *settings.Document
	// SystemProxy reads the system's proxies (proxies.mode system).
	SystemProxy func(context.Context) (ProxyValues, error)
	// DiskFile is the VM's disk for the settings given (Layout.DiskFile):
	// a confirmed smaller disk erases it, a new resources.diskPath moves it.
	DiskFile func(*settings.Document) string
	// DockerSocket is where the docker socket is served.
	DockerSocket string
	// ShellSocket, when set, is spliced to the guest's shell port.
	ShellSocket string
	// DockerConfig is the docker CLI's configuration folder for the
	// context "berth"; empty means dockercli.ConfigDir. SkipContext leaves
	// the docker configuration alone.
	DockerConfig string
	SkipContext  bool
	// StopTimeout bounds the graceful stop before the VM is forced off.
	StopTimeout time.Duration
	// Log receives the service's log; nil discards.
	Log *slog.Logger
}

// Service runs the VM and everything forwarded to it. It is safe for
// concurrent use; Start and Stop are serialised.
type Service struct {
	opts Options
	log  *slog.Logger

	op sync.Mutex // held by Start and Stop

	mu      sync.Mutex
	status  Status
	vm      machine.VM
	client  *hostlink.Client
	sock    *forward.DockerSocket
	shell   *forward.DockerSocket
	ports   *forward.Ports
	cancel  context.CancelFunc // ends the background loops
	changed chan struct{}      // closed and replaced on every change
	doc     *settings.Document // the settings in force
}

// NewService returns a stopped service.
func NewService(opts Options) *Service {
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 30 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, log: log, status: Status{State: StateStopped, Since: time.Now()}, changed: make(chan struct{}), doc: opts.Settings}
}

// Status returns the current snapshot.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.State != StateRunning {
		st.Resources = Resources{}
	}
	if s.doc != nil {
		st.Resources.CPUs, st.Resources.MemoryMiB = s.doc.Resources.CPUs, s.doc.Resources.MemoryMiB
	}
	return st
}

// Changed returns a channel closed at the next change of Status.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// VM returns the VM of the last Start, or nil.
func (s *Service) VM() machine.VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vm
}

func (s *Service) update(f func(st *Status)) {
	s.mu.Lock()
	prev := s.status
	f(&s.status)
	if s.status.State != prev.State {
		s.status.Since = time.Now()
	}
	close(s.changed)
	s.changed = make(chan struct{})
	st := s.status
	s.mu.Unlock()
	if st.State != prev.State || st.Message != prev.Message || st.Error != prev.Error {
		s.log.Info("status", "state", st.State, "message", st.Message, "error", st.Error)
	}
}

func (s *Service) progress(msg string) {
	s.update(func(st *Status) { st.Message = msg })
}

// ErrAlreadyRunning is returned by Start when the service is not stopped.
var ErrAlreadyRunning = errors.New("berth is already running")

// ErrNotRunning is returned by Stop when nothing runs.
var ErrNotRunning = errors.New("berth is not running")

// Start boots the VM, waits for its engine, forwards the docker socket and
// published ports, keeps the guest clock, writes the docker context, and
// returns once the docker socket answers GET /_ping through the forward.
// On failure the state is Error with the reason, and what Start began is
// undone.
func (s *Service) Start(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	return s.start(ctx)
}

// Settings returns the settings in force (nil when the service was made
// without).
func (s *Service) Settings() *settings.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc
}

// start is Start with s.op held.
func (s *Service) start(ctx context.Context) (err error) {
	switch st := s.Status().State; st {
	case StateStopped, StateError:
	default:
		return fmt.Errorf("start: %w (%s)", ErrAlreadyRunning, st)
	}
	s.update(func(st *Status) {
		*st = Status{State: StateStarting, Message: "starting the VM"}
	})
	defer func() {
		if err != nil {
			s.teardown(context.Background(), true)
			s.update(func(st *Status) {
				st.State, st.Error, st.Hint = StateError, err.Error(), hintFor(err)
				st.Socket = ""
			})
		}
	}()

	var vm machine.VM
	if s.opts.NewVMFor != nil {
		vm, err = s.opts.NewVMFor(s.Settings())
	} else {
		vm, err = s.opts.NewVM()
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	s.mu.Lock()
	s.vm = vm
	s.mu.Unlock()
	if err := vm.Start(ctx); err != nil {
		return fmt.Errorf("start the VM: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	client := hostlink.NewClient(vm)
	s.mu.Lock()
	s.client, s.cancel = client, cancel
	s.mu.Unlock()
	go s.watch(vm)

	s.progress("waiting for the guest agent")
	// WaitReady gives up when the VM ends: a crash while booting must not
	// wait for ctx.
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-vm.Done():
			wcancel()
		case <-wctx.Done():
		}
	}()
	gst, err := client.WaitReady(wctx, func(st hostlink.Status) {
		s.update(func(x *Status) {
			x.Engine, x.Versions = st.Engine, st.Versions
			x.Message = "guest agent up; engine " + st.Engine
		})
	})
	wcancel()
	if err != nil {
		select {
		case <-vm.Done():
			if verr := vm.Err(); verr != nil {
				return fmt.Errorf("the VM ended while booting: %w", verr)
			}
			return fmt.Errorf("the VM ended while booting")
		default:
		}
		return fmt.Errorf("wait for the engine: %w", err)
	}
	s.update(func(x *Status) { x.Engine, x.Versions = gst.Engine, gst.Versions })
	s.syncEngineConfig(ctx, client)

	s.progress("forwarding the docker socket")
	sock, err := forward.ListenDocker(s.opts.DockerSocket, vm, s.log)
	if err != nil {
		return fmt.Errorf("forward the docker socket: %w", err)
	}
	go sock.Serve()
	if s.opts.ShellSocket != "" {
		shell, err := forward.ListenShell(s.opts.ShellSocket, vm, s.log)
		if err != nil {
			sock.Close()
			return fmt.Errorf("forward the shell socket: %w", err)
		}
		go shell.Serve()
		s.mu.Lock()
		s.shell = shell
		s.mu.Unlock()
	}
	ports := forward.NewPorts(vm, s.log)
	s.mu.Lock()
	s.sock, s.ports = sock, ports
	s.mu.Unlock()
	go ports.FollowGuest(bg, client)
	go s.followFileEvents(bg, vm)
	go client.KeepTime(bg, 30*time.Second, s.log)

	if !s.opts.SkipContext {
		s.progress("writing the docker context " + dockercli.ContextName)
		if err := dockercli.EnsureContext(s.opts.DockerConfig, dockercli.HostURL(sock.Path())); err != nil {
			return fmt.Errorf("docker context: %w", err)
		}
	}

	s.progress("waiting for docker to answer")
	if err := pingDocker(ctx, sock.Path()); err != nil {
		return err
	}
	s.update(func(x *Status) {
		x.State, x.Message, x.Socket = StateRunning, "docker is ready", sock.Path()
	})
	return nil
}

// syncEngineConfig gives the VM's engine the daemon.json of the settings
// in force when it runs with another (the settings changed while Berth was
// stopped, or a first boot). A document the engine does not start with
// leaves it running with its own, and a warning in the status.
func (s *Service) syncEngineConfig(ctx context.Context, client *hostlink.Client) {
	d := s.Settings()
	if d == nil {
		return
	}
	want, err := EngineConfig(ctx, d, s.opts.SystemProxy)
	if err == nil {
		var have []byte
		if have, err = client.EngineConfig(ctx); err == nil && jsonEqual(have, want) {
			return
		}
		if err == nil {
			s.progress("applying the engine's configuration (daemon.json)")
			_, err = client.ApplyEngineConfig(ctx, want)
		}
	}
	if err != nil {
		s.log.Warn("engine configuration not applied", "err", err)
		s.update(func(x *Status) {
			x.Warning = "the engine runs without the settings' daemon.json: " + err.Error() + "; fix it with `berth engine config apply FILE`"
		})
	}
}

// Refresh asks the running guest for its status (engine health and
// versions) and folds it into Status; it does nothing unless running.
func (s *Service) Refresh(ctx context.Context) error {
	s.mu.Lock()
	client, running := s.client, s.status.State == StateRunning
	s.mu.Unlock()
	if !running || client == nil {
		return nil
	}
	gst, err := client.Status(ctx)
	if err != nil {
		return fmt.Errorf("guest status: %w", err)
	}
	disk, derr := client.Disk(ctx)
	s.update(func(x *Status) {
		if x.State == StateRunning {
			x.Engine, x.Versions = gst.Engine, gst.Versions
			x.Resources.MemTotalMiB = gst.MemTotalBytes >> 20
			x.Resources.MemUsedMiB = (gst.MemTotalBytes - min(gst.MemAvailableBytes, gst.MemTotalBytes)) >> 20
			if derr == nil {
				x.Resources.DiskUsedBytes, x.Resources.DiskSizeBytes = disk.UsedBytes, disk.TotalBytes
			}
		}
	})
	return nil
}

// VolumeFiles lists a folder of one of the engine's volumes.
func (s *Service) VolumeFiles(ctx context.Context, name, path string) ([]hostlink.VolumeEntry, error) {
	s.mu.Lock()
	client, running := s.client, s.status.State == StateRunning
	s.mu.Unlock()
	if !running || client == nil {
		return nil, ErrNotRunning
	}
	return client.VolumeFiles(ctx, name, path)
}

// pingDocker asks GET /_ping on the docker socket until it answers OK.
func pingDocker(ctx context.Context, path string) error {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://docker/_ping", nil)
		resp, err := c.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker /_ping through %s: %w (last: %w)", path, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// watch turns a VM that ends without being asked into StateError.
func (s *Service) watch(vm machine.VM) {
	<-vm.Done()
	s.mu.Lock()
	current := s.vm == vm
	st := s.status.State
	s.mu.Unlock()
	if !current || st == StateStopping || st == StateStopped {
		return
	}
	err := vm.Err()
	if err == nil {
		err = errors.New("the VM powered off on its own")
	}
	s.log.Error("vm ended", "err", err)
	if st == StateStarting {
		return // Start reports it
	}
	s.teardown(context.Background(), false)
	s.update(func(x *Status) {
		x.State, x.Error, x.Hint, x.Socket = StateError, err.Error(), hintFor(err), ""
		x.Message = ""
	})
}

// Stop shuts the guest down (control API, then the ACPI power button),
// forces the VM off after StopTimeout, and closes the forwards.
func (s *Service) Stop(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	switch s.Status().State {
	case StateStopped:
		return fmt.Errorf("stop: %w", ErrNotRunning)
	case StateError:
		s.teardown(ctx, true)
		s.update(func(x *Status) { *x = Status{State: StateStopped} })
		return nil
	}
	s.update(func(x *Status) { x.State, x.Message = StateStopping, "shutting the VM down" })
	err := s.teardown(ctx, true)
	s.update(func(x *Status) { *x = Status{State: StateStopped} })
	return err
}

// teardown closes the forwards and, when stopVM, stops the VM.
func (s *Service) teardown(ctx context.Context, stopVM bool) error {
	s.mu.Lock()
	vm, client, sock, ports, cancel := s.vm, s.client, s.sock, s.ports, s.cancel
	s.sock, s.ports, s.cancel, s.client = nil, nil, nil, nil
	if s.shell != nil {
		s.shell.Close()
		s.shell = nil
	}
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if sock != nil {
		sock.Close()
	}
	if ports != nil {
		ports.Close()
	}
	var err error
	if stopVM && vm != nil {
		select {
		case <-vm.Done():
		default:
			tctx, tcancel := context.WithTimeout(ctx, s.opts.StopTimeout)
			if client != nil {
				// The agent's orderly shutdown stops the engine first; the
				// power button is the fallback inside vm.Stop.
				sctx, scancel := context.WithTimeout(tctx, 5*time.Second)
				serr := client.Shutdown(sctx)
				scancel()
				if serr != nil {
					s.log.Warn("guest shutdown request failed", "err", serr)
				} else {
					select {
					case <-vm.Done():
					case <-tctx.Done():
					}
				}
			}
			if verr := vm.Stop(tctx); verr != nil && !errors.Is(verr, machine.ErrNotRunning) {
				err = fmt.Errorf("stop the VM: %w", verr)
			}
			tcancel()
		}
	}
	if client != nil {
		client.Close()
	}
	return err
}

// hintFor says what the user can do about err.
func hintFor(err error) string {
	switch {
	case errors.Is(err, machine.ErrNotAvailable):
		return "install QEMU (apt-get install qemu-system-x86 qemu-utils) and run `berth start` again"
	case errors.Is(err, machine.ErrCrashed):
		return "see `berth logs` for the VM console, then run `berth start` again"
	case errors.Is(err, machine.ErrAlreadyRunning), errors.Is(err, forward.ErrInUse):
		return "another Berth uses this home folder: run `berth stop`, or set BERTH_HOME to another folder"
	case errors.Is(err, hostlink.ErrEngineFailed):
		return "the engine in the VM failed: see `berth logs`, then `berth restart`"
	case errors.Is(err, machine.ErrInvalidConfig):
		return "check the settings (CPUs, memory, disk, shares)"
	case errors.Is(err, context.DeadlineExceeded):
		return "the VM did not become ready in time: see `berth logs`, then `berth restart`"
	}
	return "see `berth logs`, then run `berth start` again"
}
