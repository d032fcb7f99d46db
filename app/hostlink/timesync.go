package hostlink

import (
	"context"
	"log/slog"
	"time"
)

// clockJump is the drift between the host's wall and monotonic clocks that
// counts as a jump: the host slept (the monotonic clock stops during
// suspend, the wall clock does not) or its clock was set.
const clockJump = 2 * time.Second

// jumped tells whether, between two readings, the wall clock moved by wall
// and the monotonic clock by mono differ by more than clockJump.
func jumped(wall, mono time.Duration) bool {
	d := wall - mono
	return d > clockJump || d < -clockJump
}

// clockDeltas is how far the wall clock (Round(0) strips the monotonic
// reading) and the monotonic clock moved from prev to now.
func clockDeltas(prev, now time.Time) (wall, mono time.Duration) {
	return now.Round(0).Sub(prev.Round(0)), now.Sub(prev)
}

// KeepTime sets the guest clock at once, then again whenever the host's
// clock jumps (after the host sleeps), checking every interval, until ctx
// ends. Failures are logged and retried at the next check. A nil logger
// discards.
func (c *Client) KeepTime(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set := func() bool {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.SetTime(sctx, time.Now()); err != nil {
			log.Warn("guest clock not set", "err", err)
			return false
		}
		return true
	}
	pending := !set()
	prev := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if wall, mono := clockDeltas(prev, now); jumped(wall, mono) {
			log.Info("host clock jumped; setting the guest clock", "drift", wall-mono)
			pending = true
		}
		prev = now
		if pending {
			pending = !set()
		}
	}
}
