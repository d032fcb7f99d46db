//go:build linux

package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/events"
)

const eventRingSize = 1024

// eventLog records the last events in a ring and fans new ones out to
// subscribers.
type eventLog struct {
	mu   sync.Mutex
	ring []events.Message
	next int
	full bool
	subs map[*eventSub]struct{}
}

type eventSub struct {
	ch      chan events.Message
	filters api.Filters
}

func newEventLog() *eventLog {
	return &eventLog{ring: make([]events.Message, eventRingSize), subs: map[*eventSub]struct{}{}}
}

func (l *eventLog) publish(m events.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = m
	l.next = (l.next + 1) % len(l.ring)
	if l.next == 0 {
		l.full = true
	}
	for s := range l.subs {
		if !matchEvent(m, s.filters) {
			continue
		}
		select {
		case s.ch <- m:
		default: // a subscriber that does not keep up loses events
		}
	}
}

func (l *eventLog) listeners() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

func (l *eventLog) subscribe(ctx context.Context, since, until time.Time, f api.Filters) ([]events.Message, <-chan events.Message, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []events.Message
	if !since.IsZero() || !until.IsZero() {
		n := l.next
		start := 0
		if l.full {
			start = n
		}
		for i := 0; i < len(l.ring); i++ {
			idx := (start + i) % len(l.ring)
			if !l.full && idx >= n {
				break
			}
			m := l.ring[idx]
			t := time.Unix(0, m.TimeNano)
			if !since.IsZero() && t.Before(since) {
				continue
			}
			if !until.IsZero() && t.After(until) {
				continue
			}
			if matchEvent(m, f) {
				past = append(past, m)
			}
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		return past, nil, func() {}
	}
	s := &eventSub{ch: make(chan events.Message, 256), filters: f}
	l.subs[s] = struct{}{}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, s)
			close(s.ch)
			l.mu.Unlock()
		})
	}
	go func() {
		var timer <-chan time.Time
		if !until.IsZero() {
			t := time.NewTimer(time.Until(until))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		}
		cancel()
	}()
	return past, s.ch, cancel
}

// matchEvent applies the filters docker events accepts: type, event,
// container, image, label.
func matchEvent(m events.Message, f api.Filters) bool {
	for key, vals := range f {
		if len(vals) == 0 {
			continue
		}
		ok := false
		for _, v := range vals {
			switch key {
			case "type":
				ok = string(m.Type) == v
			case "event":
				a := string(m.Action)
				ok = a == v || strings.HasPrefix(a, v+":")
			case "container":
				ok = m.Type == events.ContainerEventType && (m.Actor.ID == v || strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
			case "image":
				ok = m.Actor.Attributes["image"] == v || (m.Type == events.ImageEventType && (m.Actor.ID == v || m.Actor.Attributes["name"] == v))
			case "label":
				k, val, hasVal := strings.Cut(v, "=")
				got, present := m.Actor.Attributes[k]
				ok = present && (!hasVal || got == val)
			default:
				ok = true
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// emit records a container event with dockerd's attributes (image, name,
// and the container's labels) plus extra.
func (e *Engine) emit(c *ctr, action events.Action, extra map[string]string) {
	attrs := map[string]string{}
	c.mu.Lock()
	for k, v := range c.m.Config.Labels {
		attrs[k] = v
	}
	attrs["image"] = c.m.Config.Image
	attrs["name"] = strings.TrimPrefix(c.m.Name, "/")
	id := c.m.ID
	c.mu.Unlock()
	e.emitRaw(id, action, attrs, extra)
}

// emitLocked is emit for callers holding c.mu.
func (e *Engine) emitLocked(c *ctr, action events.Action, extra map[string]string) {
	attrs := map[string]string{}
	for k, v := range c.m.Config.Labels {
		attrs[k] = v
	}
	attrs["image"] = c.m.Config.Image
	attrs["name"] = strings.TrimPrefix(c.m.Name, "/")
	e.emitRaw(c.m.ID, action, attrs, extra)
}

func (e *Engine) emitRaw(id string, action events.Action, attrs, extra map[string]string) {
	for k, v := range extra {
		attrs[k] = v
	}
	t := time.Now()
	e.events.publish(events.Message{
		Type:     events.ContainerEventType,
		Action:   action,
		Actor:    events.Actor{ID: id, Attributes: attrs},
		Scope:    "local",
		Time:     t.Unix(),
		TimeNano: t.UnixNano(),
	})
}

// SubscribeEvents implements api.SystemBackend.
func (e *Engine) SubscribeEvents(ctx context.Context, since, until time.Time, filters api.Filters) ([]events.Message, <-chan events.Message, func()) {
	return e.events.subscribe(ctx, since, until, filters)
}

// PublishImageEvent records an event of the image store (given to
// image.Store.SetEventSink). The store calls it with its lock held: it
// only takes the event log's lock and never calls back into the store.
func (e *Engine) PublishImageEvent(m events.Message) {
	e.events.publish(m)
}
