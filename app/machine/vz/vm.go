package vz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// hvState is the framework's VZVirtualMachineState (the darwin backend
// maps each of vz's states to one of these).
type hvState int

const (
	hvStopped hvState = iota
	hvRunning
	hvPaused
	hvError
	hvStarting
	hvPausing
	hvResuming
	hvStopping
	hvSaving
	hvRestoring
)

func (s hvState) String() string {
	names := [...]string{"stopped", "running", "paused", "error", "starting", "pausing", "resuming", "stopping", "saving", "restoring"}
	if s < 0 || int(s) >= len(names) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return names[s]
}

// terminal tells whether the framework's machine has ended in state s.
func (s hvState) terminal() bool { return s == hvStopped || s == hvError }

// liveState is the machine.State a VM that has not ended shows while the
// framework reports s: Berth never pauses or saves the VM, so those
// states count as running.
func liveState(s hvState) machine.State {
	switch s {
	case hvStarting:
		return machine.StateStarting
	case hvStopping:
		return machine.StateStopping
	default:
		return machine.StateRunning
	}
}

// endState is how a VM that ended in framework state s is seen: an
// asked-for stop is a stop whatever the framework says; an error state is
// a crash; a stop nobody asked for is the guest powering off, unless the
// console shows a kernel panic (with panic=-1 the guest reboots, which
// ends a Virtualization framework VM as a power-off does).
func endState(s hvState, stopAsked bool, panicLine string) (machine.State, error) {
	switch {
	case stopAsked:
		return machine.StateStopped, nil
	case s == hvError:
		return machine.StateCrashed, fmt.Errorf("%w: the Virtualization framework stopped the VM with an error", machine.ErrCrashed)
	case panicLine != "":
		return machine.StateCrashed, fmt.Errorf("%w: %s", machine.ErrCrashed, panicLine)
	default:
		return machine.StateStopped, nil
	}
}

// panicTail is how much of the end of the console log kernelPanic reads.
const panicTail = 16 << 10

// kernelPanic returns the kernel's panic line from the end of the console
// log at path, or "" when there is none (or no log).
func kernelPanic(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > panicTail {
		f.Seek(fi.Size()-panicTail, io.SeekStart)
	}
	tail, _ := io.ReadAll(io.LimitReader(f, panicTail))
	i := bytes.LastIndex(tail, []byte("Kernel panic - not syncing"))
	if i < 0 {
		return ""
	}
	line := tail[i:]
	if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	return string(bytes.TrimSpace(line))
}

// backend is one Virtualization framework machine as the VM drives it: the
// darwin backend wraps vz's VirtualMachine; the tests use a fake.
type backend interface {
	// Start boots the machine and returns once it runs, or why it could
	// not start.
	Start() error
	// RequestStop asks the guest to power off (the framework's power
	// button) and returns at once.
	RequestStop() error
	// Stop ends the machine at once, without the guest's part.
	Stop() error
	// States delivers the framework's state changes, in order.
	States() <-chan hvState
	// Connect opens a virtio-socket connection to a guest port.
	Connect(port uint32) (net.Conn, error)
	// Close releases what relays the states, once the machine ended.
	Close()
}

// newBackendFunc builds a machine from a plan.
type newBackendFunc func(plan) (backend, error)

// forceGrace is how long a forced stop may take before Stop gives up on
// the framework's notification.
const forceGrace = 5 * time.Second

// VM is one Virtualization framework virtual machine.
type VM struct {
	cfg        machine.Config
	host       hostInfo
	rosetta    bool
	wakeCheck  time.Duration
	newBackend newBackendFunc
	log        *slog.Logger

	mu        sync.Mutex
	state     machine.State
	b         backend
	done      chan struct{}
	err       error
	stopAsked bool
	started   bool     // the last Start's backend.Start returned nil
	endSeen   *hvState // a terminal state that came before started
	clock     *clockSync
	endHelp   context.CancelFunc // ends the helpers of a running VM
}

var _ machine.VM = (*VM)(nil)

// Config returns the VM's configuration.
func (v *VM) Config() machine.Config { return v.cfg }

// Start creates or grows the data disk, checks the kernel, builds the
// framework's machine and boots it. It returns once the machine runs; when
// ctx ends first the machine is stopped and Start returns ctx's error.
func (v *VM) Start(ctx context.Context) error {
	v.mu.Lock()
	switch v.state {
	case machine.StateStarting, machine.StateRunning, machine.StateStopping:
		v.mu.Unlock()
		return fmt.Errorf("start %s: %w", v.cfg.Name, machine.ErrAlreadyRunning)
	}
	done := make(chan struct{})
	v.state, v.done, v.err = machine.StateStarting, done, nil
	v.stopAsked, v.started, v.endSeen, v.b = false, false, nil, nil
	v.mu.Unlock()

	fail := func(err error) error {
		v.mu.Lock()
		v.settleLocked(done, machine.StateStopped, nil)
		v.mu.Unlock()
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	}
	if err := v.prepare(); err != nil {
		return fail(err)
	}
	b, err := v.newBackend(makePlan(v.cfg, v.rosetta, time.Now()))
	if err != nil {
		return fail(err)
	}
	v.mu.Lock()
	v.b = b
	v.mu.Unlock()
	// Follow the states before starting, so that none is missed.
	go v.watch(b, done)

	started := make(chan error, 1)
	go func() { started <- b.Start() }()
	select {
	case err = <-started:
	case <-ctx.Done():
		v.log.Warn("vz: start abandoned; stopping the machine", "err", ctx.Err())
		b.Stop()
		<-started
		return fail(ctx.Err())
	}
	if err != nil {
		return fail(fmt.Errorf("the Virtualization framework did not start the machine: %w", err))
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.started = true
	if v.endSeen != nil {
		v.endLocked(b, done, *v.endSeen)
		return nil
	}
	if v.state == machine.StateStarting {
		v.state = machine.StateRunning
	}
	helpCtx, cancel := context.WithCancel(context.Background())
	v.endHelp = cancel
	v.clock = newClockSync(v.setGuestTime, v.log)
	go v.clock.run(helpCtx, v.wakeCheck)
	v.log.Info("vz: machine running", "cpus", v.cfg.CPUs, "memoryMiB", v.cfg.MemoryMiB, "shares", len(v.cfg.Shares), "rosetta", v.rosetta)
	return nil
}

// prepare makes the state folder, the console log's folder and the data
// disk, and checks the kernel.
func (v *VM) prepare() error {
	if err := os.MkdirAll(v.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state folder %s: %w", v.cfg.StateDir, err)
	}
	if v.cfg.ConsoleLogPath != "" {
		if err := os.MkdirAll(filepath.Dir(v.cfg.ConsoleLogPath), 0o700); err != nil {
			return fmt.Errorf("create console log folder: %w", err)
		}
	}
	if v.cfg.Disk.Path != "" {
		grew, err := ensureDisk(v.cfg.Disk.Path, v.cfg.Disk.SizeBytes)
		if err != nil {
			return err
		}
		if grew {
			v.log.Info("vz: data disk grown", "path", v.cfg.Disk.Path, "bytes", v.cfg.Disk.SizeBytes)
		}
	}
	arch := v.cfg.Arch
	if arch == "" {
		arch = v.host.Arch
	}
	return checkKernel(v.cfg.Kernel, arch)
}

// watch follows the framework's states of b until the VM of done ends.
func (v *VM) watch(b backend, done chan struct{}) {
	states := b.States()
	for {
		select {
		case <-done:
			return
		case s := <-states:
			v.onState(b, done, s)
		}
	}
}

func (v *VM) onState(b backend, done chan struct{}, s hvState) {
	v.log.Debug("vz: state", "state", s)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.b != b {
		return
	}
	if !s.terminal() {
		if v.started && v.state != machine.StateStopping {
			v.state = liveState(s)
		}
		return
	}
	if !v.started {
		// Start is still waiting for the framework, or failing: it
		// settles the VM.
		v.endSeen = &s
		return
	}
	v.endLocked(b, done, s)
}

// endLocked settles the VM that ended in framework state s.
func (v *VM) endLocked(b backend, done chan struct{}, s hvState) {
	var line string
	if !v.stopAsked && s == hvStopped {
		line = kernelPanic(v.cfg.ConsoleLogPath)
	}
	st, err := endState(s, v.stopAsked, line)
	if err != nil {
		err = fmt.Errorf("%s: %w", v.cfg.Name, err)
		v.log.Error("vz: vm crashed", "err", err)
	} else if !v.stopAsked {
		v.log.Info("vz: the guest powered off")
	}
	v.settleLocked(done, st, err)
}

// settleLocked ends the VM of done once: final state, error, the backend
// released, the helpers ended, done closed.
func (v *VM) settleLocked(done chan struct{}, st machine.State, err error) {
	select {
	case <-done:
		return
	default:
	}
	if v.done != done {
		return
	}
	v.state, v.err = st, err
	if v.b != nil {
		v.b.Close()
		v.b = nil
	}
	if v.endHelp != nil {
		v.endHelp()
		v.endHelp = nil
	}
	v.clock = nil
	close(done)
}

// Stop asks the guest to power off (RequestStop, or the guest agent's
// shutdown call when the framework refuses) and waits; when ctx ends first
// it stops the machine by force. It returns once the framework reports the
// machine stopped.
func (v *VM) Stop(ctx context.Context) error {
	v.mu.Lock()
	if v.state != machine.StateRunning && v.state != machine.StateStarting {
		st := v.state
		v.mu.Unlock()
		if st == machine.StateStopping {
			return v.waitDone(ctx)
		}
		return fmt.Errorf("stop %s: %w", v.cfg.Name, machine.ErrNotRunning)
	}
	b, done := v.b, v.done
	if b == nil {
		// Start has not built the machine yet.
		v.mu.Unlock()
		return fmt.Errorf("stop %s: %w: still starting", v.cfg.Name, machine.ErrNotRunning)
	}
	v.state = machine.StateStopping
	v.stopAsked = true
	v.mu.Unlock()

	shutdown := func(ctx context.Context) error {
		c := hostlink.NewClient(v)
		defer c.Close()
		return c.Shutdown(ctx)
	}
	if err := stopSequence(ctx, b, shutdown, done, forceGrace, v.log); err != nil {
		v.mu.Lock()
		v.settleLocked(done, machine.StateStopped, nil)
		v.mu.Unlock()
		return fmt.Errorf("stop %s: %w", v.cfg.Name, err)
	}
	return nil
}

// stopper is what the stop sequence drives.
type stopper interface {
	RequestStop() error
	Stop() error
}

// errNoStop: the framework did not report the machine stopped after a
// forced stop.
var errNoStop = errors.New("the Virtualization framework did not report the machine stopped")

// stopSequence is the stop: ask the guest to power off through s (or,
// when s refuses, through guestShutdown), wait for done; once ctx ends,
// stop by force and wait for done at most grace.
func stopSequence(ctx context.Context, s stopper, guestShutdown func(context.Context) error, done <-chan struct{}, grace time.Duration, log *slog.Logger) error {
	if err := s.RequestStop(); err != nil {
		log.Warn("vz: the framework refused to ask the guest to stop; asking the guest agent", "err", err)
		if guestShutdown != nil {
			if err := guestShutdown(ctx); err != nil {
				log.Warn("vz: the guest agent's shutdown failed", "err", err)
			}
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	log.Warn("vz: guest did not power off in time; stopping the machine")
	if err := s.Stop(); err != nil {
		log.Warn("vz: forced stop failed", "err", err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		return errNoStop
	}
}

func (v *VM) waitDone(ctx context.Context) error {
	select {
	case <-v.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", v.cfg.Name, ctx.Err())
	}
}

// State reports the current state.
func (v *VM) State() machine.State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

// Done is closed when the machine of the last Start has ended.
func (v *VM) Done() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.done
}

// Err wraps machine.ErrCrashed when the machine ended without being asked.
func (v *VM) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Dial connects to a guest agent port over the virtio-socket device. The
// connection supports CloseWrite.
func (v *VM) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	v.mu.Lock()
	b := v.b
	v.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("dial %s port %d: %w", v.cfg.Name, port, machine.ErrNotRunning)
	}
	c, err := dialPort(ctx, b.Connect, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", v.cfg.Name, err)
	}
	return c, nil
}

// HostDidWake is the Mac's wake-from-sleep callback: the guest's clock,
// which stood still while the Mac slept, is set again through the guest
// agent's control API (retried while the guest comes back). A sleep/wake
// notification (NSWorkspaceDidWakeNotification, IOKit's
// kIOMessageSystemHasPoweredOn) calls it; without one the VM notices the
// sleep itself (Driver.WakeCheck). It does nothing when the VM is not
// running.
func (v *VM) HostDidWake() {
	v.mu.Lock()
	c := v.clock
	v.mu.Unlock()
	if c != nil {
		c.woke()
	}
}

func (v *VM) setGuestTime(ctx context.Context, t time.Time) error {
	c := hostlink.NewClient(v)
	defer c.Close()
	return c.SetTime(ctx, t)
}
