//go:build linux

package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/runtime"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Health checks, by dockerd's rules: while a container with a health check
// runs, the engine runs its probe as an exec in the container on the
// configured interval (the start interval while the container is still
// starting), keeps the last results, and moves the status between
// "starting", "healthy" and "unhealthy", emitting health_status events on
// each change. The loop ends when the container stops, which leaves the
// status "unhealthy" as dockerd does.

// Defaults dockerd applies to a zero field of a health check.
const (
	defaultProbeInterval      = 30 * time.Second
	defaultProbeTimeout       = 30 * time.Second
	defaultProbeStartInterval = 5 * time.Second
	defaultProbeRetries       = 3
	// maxHealthLog is how many results State.Health.Log keeps.
	maxHealthLog = 5
	// maxProbeOutput is how much of a probe's output a result keeps.
	maxProbeOutput = 4096
	// minProbeDuration is the smallest interval, timeout or period the
	// API accepts.
	minProbeDuration = time.Millisecond
)

// healthState is the persisted health of a container (State.Health).
type healthState struct {
	Status        container.HealthStatus
	FailingStreak int
	Log           []*container.HealthcheckResult
}

// healthMonitor is the running probe loop of one container.
type healthMonitor struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// toAPI returns the inspect form of h, nil when h is nil.
func (h *healthState) toAPI() *container.Health {
	if h == nil {
		return nil
	}
	out := &container.Health{Status: h.Status, FailingStreak: h.FailingStreak, Log: []*container.HealthcheckResult{}}
	for _, r := range h.Log {
		cp := *r
		out.Log = append(out.Log, &cp)
	}
	return out
}

// healthSuffix is what ps appends to "Up ..." for a running container
// with a health check: "(healthy)", "(unhealthy)", "(health: starting)".
func healthSuffix(m *meta) string {
	st := &m.State
	if !st.Running || st.Paused || st.Restarting || m.Health == nil {
		return ""
	}
	if m.Health.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(m.Health.Status) + ")"
}

// healthFilterValue is the value ps --filter health=... matches.
func healthFilterValue(m *meta) string {
	if m.Health == nil {
		return string(container.NoHealthcheck)
	}
	return string(m.Health.Status)
}

// probeEnabled says whether cfg has a health check that runs.
func probeEnabled(hc *container.HealthConfig) bool {
	if hc == nil || len(hc.Test) == 0 {
		return false
	}
	return hc.Test[0] != "NONE"
}

// validateHealthcheck refuses what dockerd refuses in a health check.
func validateHealthcheck(hc *container.HealthConfig) error {
	if hc == nil {
		return nil
	}
	check := func(name string, d time.Duration) error {
		if d != 0 && d < minProbeDuration {
			return invalid("%s in Healthcheck cannot be less than %s", name, minProbeDuration)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Interval", hc.Interval}, {"Timeout", hc.Timeout}, {"StartPeriod", hc.StartPeriod}, {"StartInterval", hc.StartInterval}} {
		if err := check(f.name, f.d); err != nil {
			return err
		}
	}
	if hc.Retries < 0 {
		return invalid("Retries in Healthcheck cannot be negative")
	}
	if len(hc.Test) > 0 {
		switch hc.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return invalid("unknown type of health check: %q (use CMD, CMD-SHELL or NONE)", hc.Test[0])
		}
		if hc.Test[0] != "NONE" && len(hc.Test) < 2 {
			return invalid("health check %s needs a command", hc.Test[0])
		}
	}
	return nil
}

// mergeHealthcheck fills what the user's health check leaves unset from
// the image's (dockerd's merge: an empty test and zero durations inherit).
func mergeHealthcheck(cfg *container.Config, img *image.Image) {
	ih := img.Config.Config.Healthcheck
	if ih == nil {
		return
	}
	if cfg.Healthcheck == nil {
		cp := *ih
		cfg.Healthcheck = &cp
		return
	}
	h := *cfg.Healthcheck
	if len(h.Test) == 0 {
		h.Test = ih.Test
	}
	if h.Interval == 0 {
		h.Interval = ih.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = ih.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = ih.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = ih.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = ih.Retries
	}
	cfg.Healthcheck = &h
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startHealthLocked starts the probe loop of a container that has just
// started. Called with c.mu held.
func (e *Engine) startHealthLocked(c *ctr) {
	e.stopHealthLocked(c, false)
	hc := c.m.Config.Healthcheck
	if !probeEnabled(hc) {
		c.m.Health = nil
		return
	}
	c.m.Health = &healthState{Status: container.Starting, Log: c.healthLogLocked()}
	mon := &healthMonitor{stop: make(chan struct{}), done: make(chan struct{})}
	c.health = mon
	cfg := *hc
	startedAt := c.m.State.StartedAt
	go e.healthLoop(c, mon, cfg, startedAt)
}

// healthLogLocked keeps the results of the previous run, as dockerd does.
func (c *ctr) healthLogLocked() []*container.HealthcheckResult {
	if c.m.Health == nil {
		return nil
	}
	return c.m.Health.Log
}

// stopHealthLocked ends the probe loop; stopped says the container has
// stopped, which leaves its status unhealthy. Called with c.mu held; it
// does not wait for a probe in flight (that probe's result is dropped).
func (e *Engine) stopHealthLocked(c *ctr, stopped bool) {
	mon := c.health
	if mon == nil {
		return
	}
	c.health = nil
	mon.once.Do(func() { close(mon.stop) })
	if stopped && c.m.Health != nil {
		c.m.Health.Status = container.Unhealthy
	}
}

// healthLoop runs the probe of c until mon is stopped.
func (e *Engine) healthLoop(c *ctr, mon *healthMonitor, hc container.HealthConfig, startedAt time.Time) {
	defer close(mon.done)
	interval := orDefault(hc.Interval, defaultProbeInterval)
	startInterval := orDefault(hc.StartInterval, defaultProbeStartInterval)
	for {
		wait := interval
		c.mu.Lock()
		starting := c.m.Health != nil && c.m.Health.Status == container.Starting
		c.mu.Unlock()
		if starting && hc.StartPeriod > 0 && time.Since(startedAt) < hc.StartPeriod {
			wait = startInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-mon.stop:
			t.Stop()
			return
		case <-t.C:
		}
		res := e.probe(c, mon, &hc)
		if res == nil {
			return
		}
		e.recordProbe(c, mon, &hc, startedAt, res)
	}
}

// probe runs the health check command once; nil means the loop stopped
// (or the container is gone) before a result.
func (e *Engine) probe(c *ctr, mon *healthMonitor, hc *container.HealthConfig) *container.HealthcheckResult {
	c.mu.Lock()
	h := c.h
	m := c.m
	paused := c.m.State.Paused
	c.mu.Unlock()
	if h == nil {
		return nil
	}
	start := time.Now()
	if paused {
		// dockerd skips the probe of a paused container without a result.
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: "container is paused"}
	}
	var args []string
	switch hc.Test[0] {
	case "CMD":
		args = append(args, hc.Test[1:]...)
	case "CMD-SHELL":
		shell := m.Config.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		args = append(append(args, shell...), hc.Test[1])
	}
	spec, _, err := e.buildSpec(&m)
	if err != nil {
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: err.Error()}
	}
	p := spec.Process
	p.Args = args
	p.Terminal = false
	proc, err := h.Exec(p, runtime.IOOptions{})
	if err != nil {
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: fmt.Sprintf("OCI runtime exec failed: %v", err)}
	}
	out := &cappedBuffer{max: maxProbeOutput}
	pio := proc.IO()
	var copies sync.WaitGroup
	for _, r := range []io.ReadCloser{pio.Stdout, pio.Stderr} {
		if r == nil {
			continue
		}
		copies.Add(1)
		go func(r io.ReadCloser) {
			defer copies.Done()
			_, _ = io.Copy(out, r)
			r.Close()
		}(r)
	}
	exited := make(chan runtime.ExitStatus, 1)
	go func() {
		st := proc.Wait()
		copies.Wait()
		exited <- st
	}()
	timeout := orDefault(hc.Timeout, defaultProbeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	select {
	case st := <-exited:
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: st.Code, Output: out.String()}
	case <-ctx.Done():
		_ = proc.Signal(syscall.SIGKILL)
		go func() { <-exited }()
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: fmt.Sprintf("Health check exceeded timeout (%v)", timeout)}
	case <-mon.stop:
		_ = proc.Signal(syscall.SIGKILL)
		go func() { <-exited }()
		return nil
	}
}

// recordProbe applies one result to c's health, by dockerd's rules.
func (e *Engine) recordProbe(c *ctr, mon *healthMonitor, hc *container.HealthConfig, startedAt time.Time, res *container.HealthcheckResult) {
	c.mu.Lock()
	if c.health != mon || c.m.Health == nil {
		c.mu.Unlock()
		return
	}
	hs := c.m.Health
	old := hs.Status
	applyProbeResult(hs, hc, startedAt, res)
	changed := hs.Status != old
	e.saveLocked(c)
	if changed {
		e.emitLocked(c, events.Action(string(events.ActionHealthStatus)+": "+string(hs.Status)), nil)
	}
	c.mu.Unlock()
}

// applyProbeResult records res in hs and updates its status: a success
// makes the container healthy; a failure counts towards the retries
// unless the container is still starting within its start period.
func applyProbeResult(hs *healthState, hc *container.HealthConfig, startedAt time.Time, res *container.HealthcheckResult) {
	hs.Log = append(hs.Log, res)
	if len(hs.Log) > maxHealthLog {
		hs.Log = append([]*container.HealthcheckResult(nil), hs.Log[len(hs.Log)-maxHealthLog:]...)
	}
	if res.ExitCode == 0 {
		hs.FailingStreak = 0
		hs.Status = container.Healthy
		return
	}
	if hs.Status == container.Starting && res.Start.Sub(startedAt) < hc.StartPeriod {
		return
	}
	hs.FailingStreak++
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	if hs.FailingStreak >= retries {
		hs.Status = container.Unhealthy
	}
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
