//go:build linux

package image

import (
	"time"

	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
)

// SetEventSink makes the store report image events (load, import, tag,
// untag, delete) as dockerd does, for docker events. The sink is called
// with the store's lock held: it must not call back into the store.
func (s *Store) SetEventSink(sink func(events.Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sink = sink
}

// emit reports one image event; the caller holds s.mu.
func (s *Store) emit(action events.Action, id digest.Digest, name string) {
	if s.sink == nil {
		return
	}
	t := time.Now()
	s.sink(events.Message{
		Type:     events.ImageEventType,
		Action:   action,
		Actor:    events.Actor{ID: id.String(), Attributes: map[string]string{"name": name}},
		Scope:    "local",
		Time:     t.Unix(),
		TimeNano: t.UnixNano(),
	})
}
