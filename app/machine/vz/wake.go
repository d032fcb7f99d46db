package vz

import (
	"context"
	"log/slog"
	"time"
)

// sleepJump is the drift between the host's wall and monotonic clocks that
// counts as a sleep (or a set clock): macOS's monotonic clock stops while
// the Mac sleeps, its wall clock does not.
const sleepJump = 2 * time.Second

// clockReading is one reading of both clocks.
type clockReading struct {
	wall time.Time     // wall clock, without a monotonic reading
	mono time.Duration // monotonic time since some fixed instant
}

// readClock reads both clocks; base fixes the monotonic clock's origin.
func readClock(base time.Time) clockReading {
	now := time.Now()
	return clockReading{wall: now.Round(0), mono: now.Sub(base)}
}

// clockJumped tells whether, from prev to cur, the wall clock moved
// differently from the monotonic clock by more than sleepJump.
func clockJumped(prev, cur clockReading) bool {
	d := cur.wall.Sub(prev.wall) - (cur.mono - prev.mono)
	return d > sleepJump || d < -sleepJump
}

// Retry of the guest clock after a wake: the guest's channel can take a
// moment to answer again.
const (
	wakeRetryFirst = 250 * time.Millisecond
	wakeRetryMax   = 5 * time.Second
	wakeRetryFor   = 2 * time.Minute
)

// clockSync sets the guest clock after each wake of the host: woke (the
// wake callback) and the sleep check both ask, asks coalesce, and a failed
// set is retried with back-off for wakeRetryFor.
type clockSync struct {
	set  func(context.Context, time.Time) error
	log  *slog.Logger
	kick chan struct{}

	// For the tests: the clocks, the check's ticks and the back-off's
	// first step.
	read       func() clockReading
	ticks      func(every time.Duration) (<-chan time.Time, func())
	retryFirst time.Duration
}

func newClockSync(set func(context.Context, time.Time) error, log *slog.Logger) *clockSync {
	base := time.Now()
	return &clockSync{
		set:  set,
		log:  log,
		kick: make(chan struct{}, 1),
		read: func() clockReading { return readClock(base) },
		ticks: func(every time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(every)
			return t.C, t.Stop
		},
		retryFirst: wakeRetryFirst,
	}
}

// woke asks for the guest clock to be set; it never blocks.
func (c *clockSync) woke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run serves the asks until ctx ends, checking the clocks every interval
// for a sleep the wake callback did not report (never, when interval is
// not positive).
func (c *clockSync) run(ctx context.Context, interval time.Duration) {
	var tick <-chan time.Time
	if interval > 0 {
		t, stop := c.ticks(interval)
		defer stop()
		tick = t
	}
	prev := c.read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			cur := c.read()
			jumped := clockJumped(prev, cur)
			prev = cur
			if !jumped {
				continue
			}
			c.log.Info("vz: the host slept or its clock was set; setting the guest clock")
		case <-c.kick:
			c.log.Info("vz: the host woke; setting the guest clock")
		}
		c.setWithRetry(ctx)
		// A sleep spent retrying is not a new one.
		prev = c.read()
	}
}

// setWithRetry sets the guest clock to the host's, retrying with back-off
// until it works, wakeRetryFor passes or ctx ends.
func (c *clockSync) setWithRetry(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, wakeRetryFor)
	defer cancel()
	wait := c.retryFirst
	for {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.set(sctx, time.Now())
		scancel()
		if err == nil {
			return
		}
		c.log.Debug("vz: guest clock not set yet", "err", err)
		select {
		case <-ctx.Done():
			c.log.Warn("vz: guest clock not set after the host woke", "err", err)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, wakeRetryMax)
	}
}
