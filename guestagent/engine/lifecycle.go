//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerStart implements api.ContainerBackend.
func (e *Engine) ContainerStart(ctx context.Context, name string) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st := &c.m.State
	switch {
	case st.Paused:
		c.mu.Unlock()
		return conflict("cannot start a paused container, try unpause instead")
	case st.Running && !st.Restarting:
		c.mu.Unlock()
		return notModified("container %s is already running", c.m.ID)
	case st.RemovalInProgress || st.Dead || c.removed:
		c.mu.Unlock()
		return conflict("container is marked for removal and cannot be started")
	}
	if st.Restarting {
		// A user start during the backoff starts it now.
		c.cancelRestartLocked()
		st.Restarting = false
		st.Running = false
	}
	c.m.ManualStop = false
	c.restart = restartState{}
	c.m.RestartCount = 0
	err = e.startLocked(c)
	autoRemove := err != nil && c.m.HostConfig.AutoRemove
	c.mu.Unlock()
	if autoRemove {
		if rerr := e.remove(c, true, true); rerr != nil {
			e.log.Warn("auto-removing container after failed start", "container", c.m.ID, "err", rerr)
		}
	}
	return err
}

// startLocked creates the container in the runtime and starts its process.
// Called with c.mu held.
func (e *Engine) startLocked(c *ctr) (retErr error) {
	st := &c.m.State
	defer func() {
		if retErr != nil {
			st.Error = retErr.Error()
			if st.ExitCode == 0 {
				st.ExitCode = 128
			}
			e.saveLocked(c)
			c.notify(false)
		}
	}()
	if err := e.mountVolumes(c); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			e.unmountVolumes(c)
		}
	}()
	if mode := modeOf(&c.m); mode.kind == "container" {
		if _, ok := e.sandboxes.pid(mode.name); !ok {
			return conflict("cannot join network namespace of a non running container: %s", mode.name)
		}
	}
	spec, opts, err := e.buildSpec(&c.m)
	if err != nil {
		return err
	}
	rootfs, err := e.cfg.Images.RootfsMounts(c.m.ID)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", c.m.ID, err)
	}
	opts.Rootfs = toRuntimeMounts(rootfs)
	if c.log == nil && c.m.LogPath != "" {
		lo, err := logs.ParseOptions(c.m.HostConfig.LogConfig.Config)
		if err != nil {
			return invalid("log options of container %s: %v", c.m.ID, err)
		}
		lf, err := logs.Open(c.m.LogPath, lo)
		if err != nil {
			return err
		}
		c.log = lf
	}
	h, err := e.cfg.Runtime.Create(c.m.ID, spec, opts)
	if err != nil {
		st.ExitCode = startErrorExitCode(err)
		return startError(err)
	}
	if e.needsLoopback(&c.m) {
		if err := e.loopback(h.Pid()); err != nil {
			e.log.Warn("bringing up loopback", "container", c.m.ID, "err", err)
		}
	}
	e.sandboxes.set(c.m.ID, h.Pid())
	if err := e.attachNetwork(c, h.Pid()); err != nil {
		e.sandboxes.set(c.m.ID, 0)
		_ = h.Signal(syscall.SIGKILL)
		h.Wait()
		_ = h.Delete()
		st.ExitCode = 128
		return err
	}
	r := newRun(h.IO(), c.m.Config.Tty)
	r.pump(h.IO(), c.log, c.streams)
	if err := h.Start(); err != nil {
		_ = h.Signal(syscall.SIGKILL)
		h.Wait()
		_ = h.Delete()
		e.sandboxes.set(c.m.ID, 0)
		e.detachNetworkLocked(c)
		st.ExitCode = startErrorExitCode(err)
		return startError(err)
	}
	c.h = h
	c.run = r
	st.Running = true
	st.Restarting = false
	st.Paused = false
	st.OOMKilled = false
	st.Dead = false
	st.Pid = h.Pid()
	st.ExitCode = 0
	st.Error = ""
	st.StartedAt = now()
	close(c.runStarted)
	c.runStarted = make(chan struct{})
	e.saveLocked(c)
	e.emitLocked(c, events.ActionStart, nil)
	e.startHealthLocked(c)
	go e.monitor(c, h, r)
	return nil
}

// startError wraps the runtime's error as dockerd does; the CLI reads the
// runtime's wording ("executable file not found", "permission denied") to
// choose exit status 127 or 126.
func startError(err error) error {
	return errInvalid{fmt.Errorf("failed to create task for container: %w", err)}
}

func startErrorExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

// monitor waits for the container's process to end, records the exit, and
// applies the restart policy.
func (e *Engine) monitor(c *ctr, h Handle, r *run) {
	status := h.Wait()
	select {
	case <-r.outputDone:
	case <-time.After(2 * time.Second):
		// Something outside the pid namespace still holds the pipes.
	}
	if err := h.Delete(); err != nil {
		e.log.Warn("releasing container", "container", c.m.ID, "err", err)
	}
	c.streams.endAll()
	e.unmountVolumes(c)
	e.sandboxes.set(c.m.ID, 0)
	e.detachNetwork(c)

	c.mu.Lock()
	st := &c.m.State
	c.h = nil
	e.stopHealthLocked(c, true)
	if c.log != nil {
		// Followers of this run's log end here; the next start reopens it.
		c.log.Close()
		c.log = nil
	}
	st.Running = false
	st.Paused = false
	st.Pid = 0
	st.ExitCode = status.Code
	st.OOMKilled = status.OOMKilled
	st.FinishedAt = now()
	ran := st.FinishedAt.Sub(st.StartedAt)
	e.emitLocked(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(status.Code), "execDuration": strconv.Itoa(int(ran.Seconds()))})
	if status.OOMKilled {
		e.emitLocked(c, events.ActionOOM, nil)
	}
	restart, delay := c.restart.shouldRestart(c.m.HostConfig.RestartPolicy, status.Code, c.m.ManualStop || e.isShuttingDown(), ran)
	if restart && !c.removed {
		st.Restarting = true
		st.Running = true
		cancel := make(chan struct{})
		c.cancelRs = cancel
		e.saveLocked(c)
		c.notify(true)
		close(r.exited)
		c.mu.Unlock()
		go e.restartAfter(c, delay, cancel)
		return
	}
	e.saveLocked(c)
	c.notify(true)
	close(r.exited)
	autoRemove := c.m.HostConfig.AutoRemove && !c.removed && !st.RemovalInProgress
	c.mu.Unlock()
	if autoRemove {
		if err := e.remove(c, true, true); err != nil {
			e.log.Warn("auto-removing container", "container", c.m.ID, "err", err)
		}
	}
}

// restartAfter starts c again after the policy's backoff unless cancelled.
func (e *Engine) restartAfter(c *ctr, delay time.Duration, cancel chan struct{}) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-cancel:
		return
	case <-t.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelRs != cancel || !c.m.State.Restarting || c.removed {
		return
	}
	c.cancelRs = nil
	c.m.RestartCount++
	if err := e.startLocked(c); err != nil {
		e.log.Warn("restarting container", "container", c.m.ID, "err", err)
		c.m.State.Restarting = false
		c.m.State.Running = false
		e.saveLocked(c)
		c.notify(false)
	}
}

// cancelRestartLocked stops a pending policy restart.
func (c *ctr) cancelRestartLocked() {
	if c.cancelRs != nil {
		close(c.cancelRs)
		c.cancelRs = nil
	}
}

// restartState is the restart manager of one container (dockerd's rules).
type restartState struct {
	timeout time.Duration
	count   int
}

const (
	restartBackoffStart = 100 * time.Millisecond
	restartBackoffMax   = time.Minute
	restartResetAfter   = 10 * time.Second
)

// shouldRestart decides whether a container that exited with code after
// running for ran restarts, and after how long. manual is true when the
// user stopped it (or the engine is shutting down).
func (r *restartState) shouldRestart(p container.RestartPolicy, code int, manual bool, ran time.Duration) (bool, time.Duration) {
	if ran >= restartResetAfter {
		r.timeout = 0
	}
	switch {
	case r.timeout == 0:
		r.timeout = restartBackoffStart
	case r.timeout < restartBackoffMax:
		r.timeout *= 2
	}
	if r.timeout > restartBackoffMax {
		r.timeout = restartBackoffMax
	}
	var restart bool
	switch {
	case manual:
	case p.IsAlways(), p.IsUnlessStopped():
		restart = true
	case p.IsOnFailure():
		if p.MaximumRetryCount == 0 || r.count < p.MaximumRetryCount {
			restart = code != 0
		}
	}
	if !restart {
		return false, 0
	}
	r.count++
	return true, r.timeout
}

// parseSignal accepts "KILL", "SIGKILL", "sigkill" and "9".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, invalid("Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	u := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[u]; ok {
		return sig, nil
	}
	if strings.HasPrefix(u, "RTMIN+") || strings.HasPrefix(u, "RTMAX-") {
		n, err := strconv.Atoi(u[6:])
		if err == nil && n >= 0 && n <= 30 {
			if u[:5] == "RTMIN" {
				return syscall.Signal(34 + n), nil
			}
			return syscall.Signal(64 - n), nil
		}
	}
	return 0, invalid("Invalid signal: %s", s)
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "IOT": syscall.SIGIOT, "KILL": syscall.SIGKILL,
	"PIPE": syscall.SIGPIPE, "PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS,
	"TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN,
	"TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
	"VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	"RTMIN": syscall.Signal(34), "RTMAX": syscall.Signal(64),
}

// stopSignalAndTimeout is the signal and grace period stop uses.
func stopSignalAndTimeout(m *meta, signal string, timeout *int) (syscall.Signal, int, error) {
	sigName := signal
	if sigName == "" {
		sigName = m.Config.StopSignal
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		var err error
		if sig, err = parseSignal(sigName); err != nil {
			return 0, 0, err
		}
	}
	t := 10
	if m.Config.StopTimeout != nil {
		t = *m.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	return sig, t, nil
}

// ContainerStop implements api.ContainerBackend.
func (e *Engine) ContainerStop(ctx context.Context, name string, signal string, timeout *int) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	return e.stop(ctx, c, signal, timeout)
}

func (e *Engine) stop(ctx context.Context, c *ctr, signal string, timeout *int) error {
	c.mu.Lock()
	sig, t, err := stopSignalAndTimeout(&c.m, signal, timeout)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	st := &c.m.State
	if st.Restarting {
		c.cancelRestartLocked()
		c.m.ManualStop = true
		st.Restarting = false
		st.Running = false
		e.saveLocked(c)
		c.notify(false)
		c.mu.Unlock()
		e.emit(c, events.ActionStop, nil)
		return nil
	}
	if !st.Running || c.h == nil {
		c.mu.Unlock()
		return notModified("container %s is already stopped", c.m.ID)
	}
	c.m.ManualStop = true
	e.saveLocked(c)
	h, r, paused := c.h, c.run, st.Paused
	c.mu.Unlock()

	e.signal(c, h, sig, paused)
	if t < 0 {
		<-r.exited
	} else {
		select {
		case <-r.exited:
		case <-time.After(time.Duration(t) * time.Second):
			e.signal(c, h, syscall.SIGKILL, false)
			<-r.exited
		case <-ctx.Done():
			e.signal(c, h, syscall.SIGKILL, false)
			<-r.exited
		}
	}
	e.emit(c, events.ActionStop, nil)
	return nil
}

// signal sends sig and records the kill event; a paused container is
// thawed so that the signal is delivered.
func (e *Engine) signal(c *ctr, h Handle, sig syscall.Signal, paused bool) error {
	e.emit(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := h.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal container %s: %w", c.m.ID, err)
	}
	if paused || sig == syscall.SIGKILL {
		c.mu.Lock()
		if c.m.State.Paused && c.h == h {
			if err := h.Resume(); err == nil {
				c.m.State.Paused = false
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// ContainerKill implements api.ContainerBackend.
func (e *Engine) ContainerKill(ctx context.Context, name string, signal string) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = parseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if !c.m.State.Running || c.h == nil {
		c.mu.Unlock()
		return conflict("Cannot kill container: %s: container %s is not running", name, c.m.ID)
	}
	h, r, paused := c.h, c.run, c.m.State.Paused
	c.mu.Unlock()
	if err := e.signal(c, h, sig, paused && sig == syscall.SIGKILL); err != nil {
		return err
	}
	if sig == syscall.SIGKILL {
		select {
		case <-r.exited:
		case <-ctx.Done():
		}
	}
	return nil
}

// ContainerRestart implements api.ContainerBackend.
func (e *Engine) ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	if err := e.stop(ctx, c, signal, timeout); err != nil && !isNotModified(err) {
		return err
	}
	c.mu.Lock()
	if c.m.State.Running && !c.m.State.Restarting {
		c.mu.Unlock()
		return nil
	}
	c.cancelRestartLocked()
	c.m.State.Restarting = false
	c.m.State.Running = false
	c.m.ManualStop = false
	c.restart = restartState{}
	c.m.RestartCount = 0
	err = e.startLocked(c)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	e.emit(c, events.ActionRestart, nil)
	return nil
}

func isNotModified(err error) bool {
	var nm interface{ NotModified() }
	return errors.As(err, &nm)
}

// ContainerRemove implements api.ContainerBackend.
func (e *Engine) ContainerRemove(ctx context.Context, name string, opts api.RemoveOptions) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	if opts.RemoveLink {
		return errNotImplemented{errors.New("links are not supported")}
	}
	return e.remove(c, opts.Force, opts.RemoveVolumes)
}

func (e *Engine) remove(c *ctr, force, volumes bool) error {
	c.mu.Lock()
	st := &c.m.State
	if c.removed {
		c.mu.Unlock()
		return errNoSuchContainer(c.m.ID)
	}
	if st.RemovalInProgress {
		c.mu.Unlock()
		return conflict("removal of container %s is already in progress", c.m.ID)
	}
	if st.Running {
		if !force {
			c.mu.Unlock()
			if st.Paused {
				return conflict("cannot remove container %q: container is paused and must be unpaused first", c.m.Name)
			}
			return conflict("cannot remove container %q: container is running: stop the container before removing or force remove", c.m.Name)
		}
		c.m.ManualStop = true
		if st.Restarting {
			c.cancelRestartLocked()
			st.Restarting = false
			st.Running = false
		}
	}
	h, r, paused := c.h, c.run, st.Paused
	st.RemovalInProgress = true
	c.mu.Unlock()

	if h != nil {
		e.signal(c, h, syscall.SIGKILL, paused)
		<-r.exited
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if err := e.cfg.Images.RemoveRootfs(c.m.ID); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("remove rootfs: %w", err))
	}
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove container dir: %w", err))
	}
	if len(errs) > 0 {
		st.RemovalInProgress = false
		st.Dead = true
		e.saveLocked(c)
		return fmt.Errorf("cannot remove container %q: %w", c.m.Name, errors.Join(errs...))
	}
	c.removed = true
	e.releaseVolumes(c, volumes)
	e.mu.Lock()
	delete(e.byID, c.m.ID)
	if e.names[c.m.Name] == c.m.ID {
		delete(e.names, c.m.Name)
	}
	for _, id := range c.execIDs {
		delete(e.execs, id)
	}
	e.mu.Unlock()
	c.notify(false)
	e.emitLocked(c, events.ActionDestroy, nil)
	return nil
}

// ContainerWait implements api.ContainerBackend.
func (e *Engine) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, invalid("invalid condition: %q", cond)
	}
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	c, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	w := &waiter{cond: cond, ch: make(chan container.WaitResponse, 1)}
	c.mu.Lock()
	if cond == container.WaitConditionNotRunning && !c.m.State.Running {
		w.ch <- container.WaitResponse{StatusCode: int64(c.m.State.ExitCode)}
		close(w.ch)
		c.mu.Unlock()
		return w.ch, nil
	}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		select {
		case r, ok := <-w.ch:
			if ok {
				out <- r
			}
		case <-ctx.Done():
			c.mu.Lock()
			for i, x := range c.waiters {
				if x == w {
					c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
		}
	}()
	return out, nil
}

// ContainerPause implements api.ContainerBackend.
func (e *Engine) ContainerPause(ctx context.Context, name string) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.m.State
	switch {
	case !st.Running || c.h == nil:
		return conflict("container %s is not running", c.m.ID)
	case st.Paused:
		return conflict("Container %s is already paused", c.m.ID)
	case st.Restarting:
		return conflict("Container %s is restarting, wait until the container is running", c.m.ID)
	}
	if err := c.h.Pause(); err != nil {
		return fmt.Errorf("cannot pause container %s: %w", c.m.ID, err)
	}
	st.Paused = true
	e.saveLocked(c)
	e.emitLocked(c, events.ActionPause, nil)
	return nil
}

// ContainerUnpause implements api.ContainerBackend.
func (e *Engine) ContainerUnpause(ctx context.Context, name string) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.m.State
	if !st.Paused || c.h == nil {
		return conflict("Container %s is not paused", c.m.ID)
	}
	if err := c.h.Resume(); err != nil {
		return fmt.Errorf("cannot unpause container %s: %w", c.m.ID, err)
	}
	st.Paused = false
	e.saveLocked(c)
	e.emitLocked(c, events.ActionUnPause, nil)
	return nil
}

// ContainerRename implements api.ContainerBackend.
func (e *Engine) ContainerRename(ctx context.Context, name, newName string) error {
	if newName == "" {
		return invalid("Neither old nor new names may be empty")
	}
	if !validName.MatchString(newName) {
		return invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Name
	if old == newName {
		return invalid("Renaming a container with the same name as its current name")
	}
	e.mu.Lock()
	if err := e.reserveNameLocked(newName, c.m.ID); err != nil {
		e.mu.Unlock()
		return err
	}
	delete(e.names, old)
	e.mu.Unlock()
	c.m.Name = newName
	e.saveLocked(c)
	e.emitLocked(c, events.ActionRename, map[string]string{"oldName": old})
	return nil
}

// ContainerResize implements api.ContainerBackend.
func (e *Engine) ContainerResize(ctx context.Context, name string, height, width uint) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	if h == nil {
		return conflict("container %s is not running", c.m.ID)
	}
	if err := h.Resize(height, width); err != nil {
		return fmt.Errorf("resize container %s: %w", c.m.ID, err)
	}
	e.emit(c, events.ActionResize, map[string]string{"height": strconv.FormatUint(uint64(height), 10), "width": strconv.FormatUint(uint64(width), 10)})
	return nil
}

// ContainerUpdate implements api.ContainerBackend.
func (e *Engine) ContainerUpdate(ctx context.Context, name string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	resp := container.UpdateResponse{Warnings: []string{}}
	if u == nil {
		return resp, invalid("update config cannot be empty")
	}
	c, err := e.lookup(name)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := c.m.HostConfig
	if u.RestartPolicy.Name != "" {
		if err := container.ValidateRestartPolicy(u.RestartPolicy); err != nil {
			return resp, invalid("%s", err.Error())
		}
		if hc.AutoRemove && !u.RestartPolicy.IsNone() {
			return resp, invalid("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
	}
	if u.Memory > 0 && u.Memory < 6*1024*1024 {
		return resp, invalid("Minimum memory limit allowed is 6MB")
	}
	res := hc.Resources
	r := &u.Resources
	if r.Memory != 0 {
		res.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		res.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		res.MemoryReservation = r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		res.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		res.CPUShares = r.CPUShares
	}
	if r.CPUQuota != 0 {
		res.CPUQuota = r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		res.CPUPeriod = r.CPUPeriod
	}
	if r.CpusetCpus != "" {
		res.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		res.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		res.PidsLimit = r.PidsLimit
	}
	if r.BlkioWeight != 0 {
		res.BlkioWeight = r.BlkioWeight
	}
	resp.Warnings = append(resp.Warnings, e.resourceWarnings(&u.Resources)...)
	if c.h != nil {
		if err := c.h.Update(e.resources(&res)); err != nil {
			return resp, fmt.Errorf("Cannot update container %s: %w", c.m.ID, err)
		}
	}
	hc.Resources = res
	if u.RestartPolicy.Name != "" {
		hc.RestartPolicy = u.RestartPolicy
	}
	e.saveLocked(c)
	e.emitLocked(c, events.ActionUpdate, nil)
	return resp, nil
}

// needsLoopback reports whether the container has its own network
// namespace, whose loopback the engine brings up.
func (e *Engine) needsLoopback(m *meta) bool {
	return m.HostConfig.NetworkMode != "host"
}
