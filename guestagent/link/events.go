package link

import (
	"context"
	"fmt"
	"sync"
)

// PortEvent announces a published or withdrawn port; it is one JSON line of
// GET /events.
type PortEvent struct {
	Type     string `json:"type"`   // always "port"
	Action   string `json:"action"` // "published" or "withdrawn"
	Proto    string `json:"proto"`  // "tcp" or "udp"
	HostIP   string `json:"hostIP"`
	HostPort int    `json:"hostPort"`
	Target   string `json:"target"` // container address and port, e.g. "172.17.0.2:80"
}

// Port event actions.
const (
	ActionPublished = "published"
	ActionWithdrawn = "withdrawn"
)

// PortEventSource is where the control API gets port events from; the engine
// plugs in here (a PortBroadcaster does the bookkeeping for it).
type PortEventSource interface {
	// SubscribePorts first delivers a "published" event for each port
	// published now, then every change, until ctx is done; then it closes
	// the channel. A subscriber too slow to keep up has its channel closed
	// early and must subscribe again.
	SubscribePorts(ctx context.Context) <-chan PortEvent
}

// PortBroadcaster is a PortEventSource fed by Publish and Withdraw. It keeps
// the set of published ports so that a late subscriber learns the state.
type PortBroadcaster struct {
	mu     sync.Mutex
	ports  map[string]PortEvent
	subs   map[chan PortEvent]struct{}
	buffer int
}

var _ PortEventSource = (*PortBroadcaster)(nil)

// NewPortBroadcaster returns a broadcaster whose subscribers may fall up to
// buffer events behind (64 when buffer <= 0).
func NewPortBroadcaster(buffer int) *PortBroadcaster {
	if buffer <= 0 {
		buffer = 64
	}
	return &PortBroadcaster{ports: map[string]PortEvent{}, subs: map[chan PortEvent]struct{}{}, buffer: buffer}
}

func portKey(e PortEvent) string {
	return fmt.Sprintf("%s/%s/%d", e.Proto, e.HostIP, e.HostPort)
}

// Publish records a published port and tells every subscriber.
func (b *PortBroadcaster) Publish(proto, hostIP string, hostPort int, target string) {
	e := PortEvent{Type: "port", Action: ActionPublished, Proto: proto, HostIP: hostIP, HostPort: hostPort, Target: target}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ports[portKey(e)] = e
	b.sendLocked(e)
}

// Withdraw removes a published port and tells every subscriber. Withdrawing
// a port that is not published does nothing.
func (b *PortBroadcaster) Withdraw(proto, hostIP string, hostPort int) {
	key := portKey(PortEvent{Proto: proto, HostIP: hostIP, HostPort: hostPort})
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.ports[key]
	if !ok {
		return
	}
	delete(b.ports, key)
	e.Action = ActionWithdrawn
	b.sendLocked(e)
}

func (b *PortBroadcaster) sendLocked(e PortEvent) {
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// SubscribePorts implements PortEventSource.
func (b *PortBroadcaster) SubscribePorts(ctx context.Context) <-chan PortEvent {
	b.mu.Lock()
	ch := make(chan PortEvent, b.buffer+len(b.ports))
	for _, e := range b.ports {
		ch <- e
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	})
	return ch
}
