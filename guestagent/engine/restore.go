//go:build linux

package engine

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Restore reconciles the containers loaded from disk with reality: the
// processes of a killed engine are gone with their namespaces (or are
// killed here), so those containers are marked exited; then containers
// whose restart policy asks for it start again.
func (e *Engine) Restore(ctx context.Context) {
	var toStart []*ctr
	for _, c := range e.containers() {
		c.mu.Lock()
		st := &c.m.State
		if st.RemovalInProgress || st.Dead {
			c.mu.Unlock()
			e.log.Info("removing container left half-removed", "container", c.m.ID)
			c.mu.Lock()
			st.RemovalInProgress = false
			st.Dead = false
			st.Running = false
			c.mu.Unlock()
			if err := e.remove(c, true, false); err != nil {
				e.log.Warn("removing leftover container", "container", c.m.ID, "err", err)
			}
			continue
		}
		wasRunning := st.Running
		if wasRunning {
			if st.Pid > 0 && processIsContainer(st.Pid, st.StartedAt) {
				_ = syscall.Kill(st.Pid, syscall.SIGKILL)
			}
			if e.cfg.ReleaseLeftover != nil {
				if err := e.cfg.ReleaseLeftover(c.m.ID); err != nil {
					e.log.Warn("releasing what a killed engine left of a container", "container", c.m.ID, "err", err)
				}
			}
			st.Running = false
			st.Paused = false
			st.Restarting = false
			st.Pid = 0
			c.m.Endpoints = nil
			if st.ExitCode == 0 {
				st.ExitCode = 255
			}
			st.FinishedAt = now()
			e.saveLocked(c)
			e.emitLocked(c, events.ActionDie, map[string]string{"exitCode": itoa(st.ExitCode)})
		}
		p := c.m.HostConfig.RestartPolicy
		// dockerd's rule at daemon start: always; unless-stopped unless the
		// user stopped it; on-failure when the last run failed.
		failed := !st.StartedAt.IsZero() && st.ExitCode != 0
		if p.IsAlways() || (p.IsUnlessStopped() && !c.m.ManualStop) || (p.IsOnFailure() && failed && !c.m.ManualStop) {
			toStart = append(toStart, c)
		}
		c.mu.Unlock()
	}
	for _, c := range toStart {
		c.mu.Lock()
		if err := e.startLocked(c); err != nil {
			e.log.Warn("starting container on engine start", "container", c.m.ID, "err", err)
		}
		c.mu.Unlock()
	}
}

// processIsContainer guards against killing an unrelated process that
// reused the pid: the process must have started no later than the
// container did (plus a little clock slack).
func processIsContainer(pid int, started time.Time) bool {
	p, err := readProc(pid)
	if err != nil {
		return false
	}
	start := bootTime().Add(time.Duration(p.startTicks) * time.Second / clockTicks)
	return !start.After(started.Add(2 * time.Second))
}

// Shutdown stops every running container in parallel, each with its own
// stop signal and timeout, and leaves restart policies alone so that they
// apply at the next engine start.
func (e *Engine) Shutdown(ctx context.Context) {
	e.shutdownMu.Lock()
	e.shuttingDown = true
	e.shutdownMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range e.containers() {
		c.mu.Lock()
		running := c.m.State.Running
		restarting := c.m.State.Restarting
		if restarting {
			c.cancelRestartLocked()
			c.m.State.Restarting = false
			c.m.State.Running = false
			e.saveLocked(c)
		}
		c.mu.Unlock()
		if !running || restarting {
			continue
		}
		wg.Add(1)
		go func(c *ctr) {
			defer wg.Done()
			if err := e.shutdownStop(ctx, c); err != nil {
				e.log.Warn("stopping container at shutdown", "container", c.m.ID, "err", err)
			}
		}(c)
	}
	wg.Wait()
}

// shutdownStop is stop without marking the container as stopped by the
// user (so unless-stopped containers come back at the next start).
func (e *Engine) shutdownStop(ctx context.Context, c *ctr) error {
	c.mu.Lock()
	sig, t, err := stopSignalAndTimeout(&c.m, "", nil)
	h, r, paused := c.h, c.run, c.m.State.Paused
	c.mu.Unlock()
	if err != nil || h == nil {
		return err
	}
	e.signal(c, h, sig, paused)
	select {
	case <-r.exited:
	case <-time.After(time.Duration(t) * time.Second):
		e.signal(c, h, syscall.SIGKILL, false)
		<-r.exited
	case <-ctx.Done():
		e.signal(c, h, syscall.SIGKILL, false)
		<-r.exited
	}
	return nil
}
