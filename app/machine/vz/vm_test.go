package vz

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

// fakeBackend plays the framework's machine: its states come as the
// framework sends them, through the channel.
type fakeBackend struct {
	states chan hvState

	mu       sync.Mutex
	calls    []string
	plan     plan
	closed   bool
	startErr error
	// startHold makes Start wait until Stop (a start that hangs).
	startHold chan struct{}
	holdOnce  sync.Once
	// guestIgnoresStop: RequestStop succeeds but the guest does nothing.
	guestIgnoresStop bool
	requestStopErr   error
	// stopDoesNothing: a forced Stop reports no state.
	stopDoesNothing bool
	connect         func(port uint32) (net.Conn, error)
}

func newFake() *fakeBackend { return &fakeBackend{states: make(chan hvState, 16)} }

func (f *fakeBackend) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) Start() error {
	f.call("start")
	f.states <- hvStarting
	if hold := f.hold(); hold != nil {
		<-hold
		f.states <- hvStopped
		return errors.New("stopped while starting")
	}
	if f.startErr != nil {
		f.states <- hvStopped
		return f.startErr
	}
	f.states <- hvRunning
	return nil
}

func (f *fakeBackend) RequestStop() error {
	f.call("requeststop")
	if f.requestStopErr != nil {
		return f.requestStopErr
	}
	if !f.guestIgnoresStop {
		f.states <- hvStopping
		f.states <- hvStopped
	}
	return nil
}

func (f *fakeBackend) Stop() error {
	f.call("stop")
	if hold := f.hold(); hold != nil {
		f.holdOnce.Do(func() { close(hold) })
		return nil
	}
	if !f.stopDoesNothing {
		f.states <- hvStopped
	}
	return nil
}

func (f *fakeBackend) hold() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.startHold
}

func (f *fakeBackend) States() <-chan hvState { return f.states }

func (f *fakeBackend) Connect(port uint32) (net.Conn, error) {
	f.call("connect")
	if f.connect == nil {
		return nil, errors.New("connection reset by peer")
	}
	return f.connect(port)
}

func (f *fakeBackend) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *fakeBackend) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// newTestVM returns a VM over fake with a bootable kernel.
func newTestVM(t *testing.T, fake *fakeBackend, mod func(*machine.Config)) *VM {
	t.Helper()
	cfg := testConfig(t)
	if err := os.WriteFile(cfg.Kernel, arm64Image(), 0o644); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg)
	}
	d := Driver{WakeCheck: -1, Log: slog.New(slog.DiscardHandler)}
	v, err := d.newVM(cfg, appleSilicon(), func(p plan) (backend, error) {
		fake.mu.Lock()
		fake.plan = p
		fake.mu.Unlock()
		return fake, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitDone(t *testing.T, v *VM) {
	t.Helper()
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("VM did not end; state %s", v.State())
	}
}

func TestStartStop(t *testing.T) {
	fake := newFake()
	v := newTestVM(t, fake, nil)
	select {
	case <-v.Done():
	default:
		t.Fatal("Done of a new VM is not closed")
	}
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := v.State(); st != machine.StateRunning {
		t.Fatalf("state %s after Start", st)
	}
	if err := v.Start(ctxFor(t, time.Second)); !errors.Is(err, machine.ErrAlreadyRunning) {
		t.Fatalf("second Start: %v", err)
	}
	if fi, err := os.Stat(v.cfg.Disk.Path); err != nil || fi.Size() != v.cfg.Disk.SizeBytes {
		t.Fatalf("data disk: %v", err)
	}
	if fake.plan.Kernel != v.cfg.Kernel || !strings.Contains(fake.plan.Cmdline, "berth.link=vsock") {
		t.Fatalf("plan %+v", fake.plan)
	}
	if err := v.Stop(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, v)
	if st, err := v.State(), v.Err(); st != machine.StateStopped || err != nil {
		t.Fatalf("after Stop: %s, %v", st, err)
	}
	if got := strings.Join(fake.Calls(), ","); got != "start,requeststop" {
		t.Fatalf("calls %s", got)
	}
	if !fake.isClosed() {
		t.Fatal("backend not closed")
	}
	if err := v.Stop(ctxFor(t, time.Second)); !errors.Is(err, machine.ErrNotRunning) {
		t.Fatalf("Stop of a stopped VM: %v", err)
	}
	if _, err := v.Dial(ctxFor(t, time.Second), machine.PortControl); !errors.Is(err, machine.ErrNotRunning) {
		t.Fatalf("Dial of a stopped VM: %v", err)
	}

	// It starts again, on a new machine.
	fake2 := newFake()
	v.newBackend = func(plan) (backend, error) { return fake2, nil }
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if v.State() != machine.StateRunning {
		t.Fatalf("state %s after the second Start", v.State())
	}
	if err := v.Stop(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestStopForcedWhenGuestIgnores(t *testing.T) {
	fake := newFake()
	fake.guestIgnoresStop = true
	v := newTestVM(t, fake, nil)
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(ctxFor(t, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if st, err := v.State(), v.Err(); st != machine.StateStopped || err != nil {
		t.Fatalf("after a forced stop: %s, %v", st, err)
	}
	if got := strings.Join(fake.Calls(), ","); got != "start,requeststop,stop" {
		t.Fatalf("calls %s", got)
	}
}

func TestStopRefusedAsksGuestAgent(t *testing.T) {
	fake := newFake()
	fake.requestStopErr = errors.New("cannot request stop")
	fake.connect = serveControl(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/shutdown" {
			w.WriteHeader(http.StatusOK)
			go func() { fake.states <- hvStopped }()
			return
		}
		http.NotFound(w, r)
	})
	v := newTestVM(t, fake, nil)
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st, err := v.State(), v.Err(); st != machine.StateStopped || err != nil {
		t.Fatalf("after the agent's shutdown: %s, %v", st, err)
	}
	if calls := strings.Join(fake.Calls(), ","); calls != "start,requeststop,connect" {
		t.Fatalf("calls %s", calls)
	}
}

func TestStopNoNotification(t *testing.T) {
	fake := newFake()
	fake.guestIgnoresStop, fake.stopDoesNothing = true, true
	v := newTestVM(t, fake, nil)
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := v.Stop(ctxFor(t, 50*time.Millisecond))
	if !errors.Is(err, errNoStop) {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d < forceGrace {
		t.Fatalf("Stop gave up after %s", d)
	}
	if v.State() != machine.StateStopped {
		t.Fatalf("state %s", v.State())
	}
	waitDone(t, v)
}

func TestEnds(t *testing.T) {
	tests := []struct {
		name    string
		end     hvState
		console string
		state   machine.State
		crashed bool
		msg     string
	}{
		{"guest powers off", hvStopped, "reboot: Power down\n", machine.StateStopped, false, ""},
		{"framework error", hvError, "", machine.StateCrashed, true, "with an error"},
		{"kernel panic", hvStopped, "[    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\n[    1.1] ---[ end ]---\n",
			machine.StateCrashed, true, "Attempted to kill init"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake()
			v := newTestVM(t, fake, nil)
			if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(v.cfg.ConsoleLogPath, []byte(tc.console), 0o600); err != nil {
				t.Fatal(err)
			}
			fake.states <- tc.end
			waitDone(t, v)
			if v.State() != tc.state {
				t.Fatalf("state %s, want %s", v.State(), tc.state)
			}
			err := v.Err()
			if tc.crashed != errors.Is(err, machine.ErrCrashed) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("Err %v; want crashed %v (%s)", err, tc.crashed, tc.msg)
			}
			if !fake.isClosed() {
				t.Fatal("backend not closed")
			}
		})
	}
}

func TestStartFails(t *testing.T) {
	fake := newFake()
	fake.startErr = errors.New("internal virtualization error")
	v := newTestVM(t, fake, nil)
	err := v.Start(ctxFor(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "internal virtualization error") {
		t.Fatalf("Start: %v", err)
	}
	waitDone(t, v)
	if st, err := v.State(), v.Err(); st != machine.StateStopped || err != nil {
		t.Fatalf("after a failed start: %s, %v", st, err)
	}
}

func TestStartAbandoned(t *testing.T) {
	fake := newFake()
	fake.startHold = make(chan struct{})
	v := newTestVM(t, fake, nil)
	err := v.Start(ctxFor(t, 50*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start: %v", err)
	}
	waitDone(t, v)
	if v.State() != machine.StateStopped {
		t.Fatalf("state %s", v.State())
	}
	if got := strings.Join(fake.Calls(), ","); got != "start,stop" {
		t.Fatalf("calls %s", got)
	}
}

func TestStartChecksKernel(t *testing.T) {
	fake := newFake()
	v := newTestVM(t, fake, func(c *machine.Config) { os.WriteFile(c.Kernel, []byte{0x1f, 0x8b, 0, 0}, 0o644) })
	err := v.Start(ctxFor(t, time.Second))
	if !errors.Is(err, machine.ErrInvalidConfig) || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("Start: %v", err)
	}
	if v.State() != machine.StateStopped || len(fake.Calls()) != 0 {
		t.Fatalf("state %s, calls %v", v.State(), fake.Calls())
	}
}

func TestNewChecks(t *testing.T) {
	cfg := testConfig(t)
	cfg.CPUs = 0
	if _, err := (Driver{}).newVM(cfg, appleSilicon(), nil); !errors.Is(err, machine.ErrInvalidConfig) {
		t.Fatalf("invalid config: %v", err)
	}
	cfg = testConfig(t)
	cfg.Arch = machine.ArchAMD64
	if _, err := (Driver{}).newVM(cfg, appleSilicon(), nil); !errors.Is(err, machine.ErrInvalidConfig) {
		t.Fatalf("amd64 guest on arm64: %v", err)
	}
	h := appleSilicon()
	h.Rosetta = rosettaNotInstalled
	if _, err := (Driver{Rosetta: true}).newVM(testConfig(t), h, nil); !errors.Is(err, machine.ErrNotAvailable) {
		t.Fatalf("Rosetta not installed: %v", err)
	}
	cfg = testConfig(t)
	cfg.Arch = machine.ArchAMD64
	intel := hostInfo{Arch: machine.ArchAMD64, MacOS: macOSVersion{13, 0}}
	v, err := (Driver{Rosetta: true}).newVM(cfg, intel, nil)
	if err != nil || v.rosetta {
		t.Fatalf("Rosetta on Intel: rosetta %v, %v", v != nil && v.rosetta, err)
	}
	if (Driver{}).Name() != "vz" {
		t.Fatal("name")
	}
}

func TestNewElsewhere(t *testing.T) {
	if _, err := probeHost(); err == nil {
		t.Skip("the Virtualization framework is here")
	}
	if _, err := (Driver{}).New(testConfig(t)); !errors.Is(err, machine.ErrNotAvailable) {
		t.Fatalf("New: %v", err)
	}
}

// serveControl returns a Connect that serves HTTP on each connection with h.
func serveControl(t *testing.T, h http.HandlerFunc) func(uint32) (net.Conn, error) {
	ln := newPipeListener()
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return func(port uint32) (net.Conn, error) {
		if port != machine.PortControl {
			return nil, errors.New("connection refused")
		}
		return ln.dial()
	}
}

// pipeListener hands out the server ends of net.Pipe connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial() (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "unix"} }

func TestDialAndWake(t *testing.T) {
	fake := newFake()
	times := make(chan int64, 4)
	fake.connect = serveControl(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/time" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var body struct {
			UnixNano int64 `json:"unixNano"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		times <- body.UnixNano
		w.WriteHeader(http.StatusOK)
	})
	v := newTestVM(t, fake, nil)
	v.HostDidWake() // not running: nothing
	if err := v.Start(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	defer v.Stop(ctxFor(t, 10*time.Second))

	c, err := v.Dial(ctxFor(t, time.Second), machine.PortControl)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(closeWriter); !ok {
		t.Fatalf("%T has no CloseWrite", c)
	}
	c.Close()
	if _, err := v.Dial(ctxFor(t, time.Second), machine.PortDocker); err == nil || !strings.Contains(err.Error(), "port 2375") {
		t.Fatalf("Dial of a port nothing serves: %v", err)
	}

	before := time.Now().UnixNano()
	v.HostDidWake()
	select {
	case got := <-times:
		if got < before {
			t.Fatalf("guest clock set to %d, before the wake (%d)", got, before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wake did not set the guest clock")
	}
}

func TestKernelPanic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console.log")
	if kernelPanic(p) != "" || kernelPanic("") != "" {
		t.Fatal("panic found in no log")
	}
	log := strings.Repeat("x", 2*panicTail) + "\nKernel panic - not syncing: VFS: Unable to mount root fs\r\nmore\n"
	os.WriteFile(p, []byte(log), 0o600)
	if got := kernelPanic(p); got != "Kernel panic - not syncing: VFS: Unable to mount root fs" {
		t.Fatalf("panic line %q", got)
	}
}

func TestStates(t *testing.T) {
	for s, want := range map[hvState]machine.State{
		hvStarting: machine.StateStarting, hvRunning: machine.StateRunning, hvPaused: machine.StateRunning,
		hvStopping: machine.StateStopping, hvResuming: machine.StateRunning,
	} {
		if got := liveState(s); got != want {
			t.Errorf("liveState(%s) = %s, want %s", s, got, want)
		}
	}
	if !hvStopped.terminal() || !hvError.terminal() || hvStopping.terminal() {
		t.Error("terminal states")
	}
	if hvRestoring.String() != "restoring" || hvState(42).String() != "state(42)" {
		t.Error("state names")
	}
	if st, err := endState(hvError, true, "Kernel panic"); st != machine.StateStopped || err != nil {
		t.Errorf("an asked-for stop ended as %s, %v", st, err)
	}
}

type fakeStopper struct {
	mu          sync.Mutex
	calls       []string
	refuse      bool
	onRequest   func()
	onStop      func()
	stopFailure error
}

func (f *fakeStopper) RequestStop() error {
	f.mu.Lock()
	f.calls = append(f.calls, "request")
	f.mu.Unlock()
	if f.refuse {
		return errors.New("refused")
	}
	if f.onRequest != nil {
		f.onRequest()
	}
	return nil
}

func (f *fakeStopper) Stop() error {
	f.mu.Lock()
	f.calls = append(f.calls, "stop")
	f.mu.Unlock()
	if f.onStop != nil {
		f.onStop()
	}
	return f.stopFailure
}

func TestStopSequence(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("graceful", func(t *testing.T) {
		done := make(chan struct{})
		s := &fakeStopper{onRequest: func() { close(done) }}
		if err := stopSequence(ctxFor(t, time.Second), s, nil, done, time.Second, log); err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.calls, ",") != "request" {
			t.Fatalf("calls %v", s.calls)
		}
	})
	t.Run("refused, the agent stops it", func(t *testing.T) {
		done := make(chan struct{})
		s := &fakeStopper{refuse: true}
		asked := false
		shutdown := func(context.Context) error { asked = true; close(done); return nil }
		if err := stopSequence(ctxFor(t, time.Second), s, shutdown, done, time.Second, log); err != nil {
			t.Fatal(err)
		}
		if !asked || strings.Join(s.calls, ",") != "request" {
			t.Fatalf("asked %v, calls %v", asked, s.calls)
		}
	})
	t.Run("forced after ctx", func(t *testing.T) {
		done := make(chan struct{})
		s := &fakeStopper{onStop: func() { close(done) }}
		if err := stopSequence(ctxFor(t, 20*time.Millisecond), s, nil, done, time.Second, log); err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.calls, ",") != "request,stop" {
			t.Fatalf("calls %v", s.calls)
		}
	})
	t.Run("never stops", func(t *testing.T) {
		s := &fakeStopper{stopFailure: errors.New("stop failed")}
		err := stopSequence(ctxFor(t, 20*time.Millisecond), s, nil, make(chan struct{}), 20*time.Millisecond, log)
		if !errors.Is(err, errNoStop) {
			t.Fatalf("err %v", err)
		}
	})
}
