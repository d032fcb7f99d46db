package hostlink

import (
	"testing"
	"time"
)

func TestJumped(t *testing.T) {
	tests := []struct {
		name       string
		wall, mono time.Duration
		want       bool
	}{
		{"steady", 30 * time.Second, 30 * time.Second, false},
		{"small drift", 31 * time.Second, 30 * time.Second, false},
		{"host slept ten minutes", 10*time.Minute + 30*time.Second, 30 * time.Second, true},
		{"clock set back an hour", -time.Hour + 30*time.Second, 30 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := jumped(tc.wall, tc.mono); got != tc.want {
				t.Fatalf("jumped(%v, %v) = %v, want %v", tc.wall, tc.mono, got, tc.want)
			}
		})
	}
}

func TestClockDeltasOfSteadyReadings(t *testing.T) {
	prev := time.Now()
	now := prev.Add(5 * time.Second)
	wall, mono := clockDeltas(prev, now)
	if wall != 5*time.Second || mono != 5*time.Second || jumped(wall, mono) {
		t.Fatalf("deltas %v %v", wall, mono)
	}
}
