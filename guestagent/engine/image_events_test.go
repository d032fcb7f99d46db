//go:build linux

package engine

import (
	"context"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/moby/moby/api/types/events"
)

// TestRealImageEvents: the image store's events reach docker events
// through the engine, filtered like dockerd's.
func TestRealImageEvents(t *testing.T) {
	e := realEngine(t, "")
	store := e.cfg.Images.(*image.Store)
	store.SetEventSink(e.PublishImageEvent)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	_, all, stopAll := e.SubscribeEvents(ctx, time.Time{}, time.Time{}, api.Filters{"type": {"image"}})
	defer stopAll()
	_, named, stopNamed := e.SubscribeEvents(ctx, time.Time{}, time.Time{}, api.Filters{"image": {"other:1"}})
	defer stopNamed()

	if err := store.ImageTag(ctx, "busybox", "other", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ImageDelete(ctx, "other:1", false, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ch     <-chan events.Message
		action events.Action
		name   string
	}{
		{all, events.ActionTag, "other:1"},
		{all, events.ActionUnTag, ""},
		{named, events.ActionTag, "other:1"},
	}
	for _, tt := range tests {
		m := <-tt.ch
		if m.Type != events.ImageEventType || m.Action != tt.action || (tt.name != "" && m.Actor.Attributes["name"] != tt.name) {
			t.Errorf("event %+v, want image %s %s", m, tt.action, tt.name)
		}
	}
	// The ring keeps them for docker events --since.
	past, _, stop := e.SubscribeEvents(ctx, time.Unix(0, 1), time.Now(), api.Filters{"type": {"image"}, "event": {"tag"}})
	stop()
	if len(past) != 1 {
		t.Errorf("recorded tag events: %+v", past)
	}
}
