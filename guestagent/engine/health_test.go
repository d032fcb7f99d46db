//go:build linux

package engine

import (
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
)

func TestApplyProbeResult(t *testing.T) {
	start := time.Unix(1000, 0)
	res := func(after time.Duration, code int) *container.HealthcheckResult {
		return &container.HealthcheckResult{Start: start.Add(after), End: start.Add(after), ExitCode: code}
	}
	tests := []struct {
		name       string
		hc         container.HealthConfig
		codes      []int
		wantStatus container.HealthStatus
		wantStreak int
	}{
		{"one success", container.HealthConfig{}, []int{0}, container.Healthy, 0},
		{"default retries", container.HealthConfig{}, []int{1, 1}, container.Starting, 2},
		{"three failures", container.HealthConfig{}, []int{1, 1, 1}, container.Unhealthy, 3},
		{"retries 1", container.HealthConfig{Retries: 1}, []int{2}, container.Unhealthy, 1},
		{"success resets", container.HealthConfig{Retries: 2}, []int{1, 0, 1}, container.Healthy, 1},
		{"timeout counts", container.HealthConfig{Retries: 1}, []int{-1}, container.Unhealthy, 1},
		{"start period forgives", container.HealthConfig{Retries: 1, StartPeriod: time.Hour}, []int{1, 1, 1}, container.Starting, 0},
		{"healthy in start period counts", container.HealthConfig{Retries: 1, StartPeriod: time.Hour}, []int{0, 1}, container.Unhealthy, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := &healthState{Status: container.Starting}
			for i, code := range tt.codes {
				applyProbeResult(hs, &tt.hc, start, res(time.Duration(i)*time.Second, code))
			}
			if hs.Status != tt.wantStatus || hs.FailingStreak != tt.wantStreak {
				t.Errorf("status %s streak %d, want %s %d", hs.Status, hs.FailingStreak, tt.wantStatus, tt.wantStreak)
			}
		})
	}
}

func TestHealthLogKeepsLastFive(t *testing.T) {
	hs := &healthState{Status: container.Starting}
	for i := 0; i < 8; i++ {
		applyProbeResult(hs, &container.HealthConfig{}, time.Time{}, &container.HealthcheckResult{ExitCode: i})
	}
	if len(hs.Log) != maxHealthLog {
		t.Fatalf("log has %d entries, want %d", len(hs.Log), maxHealthLog)
	}
	if hs.Log[0].ExitCode != 3 || hs.Log[4].ExitCode != 7 {
		t.Errorf("log keeps exit codes %d..%d, want 3..7", hs.Log[0].ExitCode, hs.Log[4].ExitCode)
	}
}

func TestValidateHealthcheck(t *testing.T) {
	for _, tt := range []struct {
		hc *container.HealthConfig
		ok bool
	}{
		{nil, true},
		{&container.HealthConfig{Test: []string{"NONE"}}, true},
		{&container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second}, true},
		{&container.HealthConfig{Test: []string{"CMD"}}, false},
		{&container.HealthConfig{Test: []string{"BOGUS", "x"}}, false},
		{&container.HealthConfig{Interval: time.Microsecond}, false},
		{&container.HealthConfig{Retries: -1}, false},
	} {
		if err := validateHealthcheck(tt.hc); (err == nil) != tt.ok {
			t.Errorf("validateHealthcheck(%+v) = %v, want ok=%v", tt.hc, err, tt.ok)
		}
	}
}

func TestHealthSuffix(t *testing.T) {
	m := &meta{State: state{Running: true}}
	if s := healthSuffix(m); s != "" {
		t.Errorf("no health check: suffix %q", s)
	}
	if v := healthFilterValue(m); v != "none" {
		t.Errorf("no health check: filter value %q", v)
	}
	m.Health = &healthState{Status: container.Starting}
	if s := healthSuffix(m); s != " (health: starting)" {
		t.Errorf("starting: suffix %q", s)
	}
	m.Health.Status = container.Unhealthy
	if s := healthSuffix(m); s != " (unhealthy)" {
		t.Errorf("unhealthy: suffix %q", s)
	}
	m.State.Running = false
	if s := healthSuffix(m); s != "" {
		t.Errorf("stopped: suffix %q", s)
	}
}

func TestMergeHealthcheck(t *testing.T) {
	img := &image.Image{}
	img.Config.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "probe"}, Interval: time.Minute, Retries: 4}
	cfg := &container.Config{}
	mergeHealthcheck(cfg, img)
	if cfg.Healthcheck == nil || cfg.Healthcheck.Test[1] != "probe" || cfg.Healthcheck.Retries != 4 {
		t.Fatalf("inherited: %+v", cfg.Healthcheck)
	}
	cfg = &container.Config{Healthcheck: &container.HealthConfig{Interval: time.Second}}
	mergeHealthcheck(cfg, img)
	if h := cfg.Healthcheck; h.Interval != time.Second || len(h.Test) != 2 || h.Retries != 4 {
		t.Errorf("user interval with the image's test: %+v", h)
	}
	cfg = &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}
	mergeHealthcheck(cfg, img)
	if probeEnabled(cfg.Healthcheck) {
		t.Errorf("--no-healthcheck still probes: %+v", cfg.Healthcheck)
	}
}
