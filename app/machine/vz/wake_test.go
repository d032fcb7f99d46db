package vz

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestClockJumped(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	at := func(wall, mono time.Duration) clockReading { return clockReading{t0.Add(wall), mono} }
	tests := []struct {
		name      string
		prev, cur clockReading
		want      bool
	}{
		{"steady", at(0, 0), at(2*time.Second, 2*time.Second), false},
		{"small drift", at(0, 0), at(3*time.Second, 2*time.Second), false},
		{"slept an hour", at(0, 0), at(time.Hour+2*time.Second, 2*time.Second), true},
		{"clock set back", at(0, 0), at(-time.Minute, 2*time.Second), true},
	}
	for _, tc := range tests {
		if got := clockJumped(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	r := readClock(time.Now())
	if r.wall.Round(0) != r.wall || r.mono < 0 {
		t.Fatalf("reading %+v", r)
	}
}

// testClockSync returns a clockSync whose clocks and ticks the test drives
// and whose sets go to the returned channel (failing while fail says so).
func testClockSync(fail func() bool) (*clockSync, chan time.Time, func(clockReading)) {
	sets := make(chan time.Time, 8)
	var mu sync.Mutex
	reading := clockReading{wall: time.Unix(1700000000, 0)}
	tick := make(chan time.Time)
	c := newClockSync(func(_ context.Context, t time.Time) error {
		if fail != nil && fail() {
			return errors.New("guest not answering")
		}
		sets <- t
		return nil
	}, slog.New(slog.DiscardHandler))
	c.read = func() clockReading { mu.Lock(); defer mu.Unlock(); return reading }
	c.ticks = func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }
	c.retryFirst = time.Millisecond
	advance := func(r clockReading) {
		mu.Lock()
		reading = r
		mu.Unlock()
		tick <- time.Time{}
	}
	return c, sets, advance
}

func TestClockSyncSleepCheck(t *testing.T) {
	c, sets, advance := testClockSync(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx, time.Second)
	base := time.Unix(1700000000, 0)
	advance(clockReading{base.Add(time.Second), time.Second}) // no sleep
	select {
	case <-sets:
		t.Fatal("clock set without a sleep")
	case <-time.After(20 * time.Millisecond):
	}
	advance(clockReading{base.Add(time.Hour), 2 * time.Second}) // slept
	select {
	case <-sets:
	case <-time.After(5 * time.Second):
		t.Fatal("a sleep did not set the clock")
	}
}

func TestClockSyncWakeRetries(t *testing.T) {
	var mu sync.Mutex
	failures := 3
	c, sets, _ := testClockSync(func() bool {
		mu.Lock()
		defer mu.Unlock()
		failures--
		return failures >= 0
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx, 0)
	c.woke()
	c.woke() // coalesces with the first, or makes one more set
	select {
	case <-sets:
	case <-time.After(5 * time.Second):
		t.Fatal("the wake did not set the clock after retries")
	}
	mu.Lock()
	defer mu.Unlock()
	if failures > 0 {
		t.Fatalf("%d failures left", failures)
	}
}
