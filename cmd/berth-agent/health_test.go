//go:build linux

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestHealthCheck drives a --health-cmd from healthy to unhealthy and
// checks inspect, ps, the health filter and the health_status events.
func TestHealthCheck(t *testing.T) {
	e := needEngine(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)

	t.Run("healthy then unhealthy", func(t *testing.T) {
		t.Parallel()
		id := e.runDetached(t, "--health-cmd", "test -f /tmp/ok", "--health-interval", "100ms",
			"--health-retries", "2", testImage, "sh", "-c", "touch /tmp/ok; exec sleep 60")
		eventually(t, "container healthy", func() (bool, string) {
			h := e.inspect(t, id).State.Health
			return h != nil && h.Status == "healthy", healthString(h)
		})
		ps := e.ps(t, "--filter", "id="+id)
		if len(ps) != 1 || !strings.HasSuffix(ps[0].Status, "(healthy)") {
			t.Errorf("ps of a healthy container: %+v", ps)
		}
		if ids := e.ok(t, "ps", "-q", "--no-trunc", "--filter", "health=healthy"); !strings.Contains(ids, id) {
			t.Errorf("ps --filter health=healthy does not list %s: %q", id, ids)
		}
		e.ok(t, "exec", id, "rm", "/tmp/ok")
		eventually(t, "container unhealthy", func() (bool, string) {
			h := e.inspect(t, id).State.Health
			return h != nil && h.Status == "unhealthy", healthString(h)
		})
		h := e.inspect(t, id).State.Health
		if h.FailingStreak < 2 || len(h.Log) == 0 || len(h.Log) > 5 {
			t.Fatalf("unhealthy state: %s", healthString(h))
		}
		if last := h.Log[len(h.Log)-1]; last.ExitCode != 1 {
			t.Errorf("last probe exit code %d, want 1", last.ExitCode)
		}
		ps = e.ps(t, "--filter", "id="+id)
		if len(ps) != 1 || !strings.HasSuffix(ps[0].Status, "(unhealthy)") {
			t.Errorf("ps of an unhealthy container: %+v", ps)
		}
		out := e.ok(t, "events", "--since", since, "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano),
			"--filter", "container="+id, "--filter", "event=health_status", "--format", "{{.Action}}")
		if !strings.Contains(out, "health_status: healthy") || !strings.Contains(out, "health_status: unhealthy") {
			t.Errorf("health_status events: %q", out)
		}

		e.ok(t, "stop", "-t", "0", id)
		stopped := e.inspect(t, id).State.Health
		if stopped == nil || stopped.Status != "unhealthy" {
			t.Errorf("health of a stopped container: %s", healthString(stopped))
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		id := e.runDetached(t, "--health-cmd", "sleep 30", "--health-interval", "100ms", "--health-timeout", "200ms",
			"--health-retries", "1", testImage, "sleep", "60")
		eventually(t, "container unhealthy after a probe timeout", func() (bool, string) {
			h := e.inspect(t, id).State.Health
			return h != nil && h.Status == "unhealthy", healthString(h)
		})
		h := e.inspect(t, id).State.Health
		if last := h.Log[len(h.Log)-1]; last.ExitCode != -1 || !strings.Contains(last.Output, "exceeded timeout") {
			t.Errorf("timed out probe result: %+v", *last)
		}
	})

	t.Run("starting", func(t *testing.T) {
		t.Parallel()
		id := e.runDetached(t, "--health-cmd", "false", "--health-interval", "100ms", "--health-retries", "1",
			"--health-start-period", "1h", "--health-start-interval", "100ms", testImage, "sleep", "60")
		eventually(t, "failed probes recorded in the start period", func() (bool, string) {
			h := e.inspect(t, id).State.Health
			return h != nil && len(h.Log) >= 2, healthString(h)
		})
		h := e.inspect(t, id).State.Health
		if h.Status != "starting" || h.FailingStreak != 0 {
			t.Errorf("failures within the start period: %s", healthString(h))
		}
		ps := e.ps(t, "--filter", "id="+id)
		if len(ps) != 1 || !strings.HasSuffix(ps[0].Status, "(health: starting)") {
			t.Errorf("ps of a starting container: %+v", ps)
		}
	})

	t.Run("no healthcheck", func(t *testing.T) {
		t.Parallel()
		id := e.runDetached(t, "--no-healthcheck", testImage, "sleep", "60")
		if h := e.inspect(t, id).State.Health; h != nil {
			t.Errorf("--no-healthcheck has health: %s", healthString(h))
		}
		if ids := e.ok(t, "ps", "-q", "--no-trunc", "--filter", "health=none"); !strings.Contains(ids, id) {
			t.Errorf("ps --filter health=none does not list %s: %q", id, ids)
		}
	})
}

func healthString(h *container.Health) string {
	if h == nil {
		return "no health"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s streak %d;", h.Status, h.FailingStreak)
	for _, r := range h.Log {
		fmt.Fprintf(&b, " [%d %q]", r.ExitCode, r.Output)
	}
	return b.String()
}
