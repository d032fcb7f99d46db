package api

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

func TestInfo(t *testing.T) {
	b := &fakeBackend{info: func(context.Context) (*system.Info, error) {
		return &system.Info{ID: "engine-1", Containers: 3, OSType: "linux", Name: "berth"}, nil
	}}
	ts := startServer(t, b)
	res, err := ts.client(t).Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.ID != "engine-1" || res.Info.Containers != 3 {
		t.Errorf("info = %+v", res.Info)
	}
}

// TestEventsStream checks that recorded events come first, that each live
// event reaches the client while the stream stays open (it is flushed),
// and that the subscription is cancelled when the client leaves.
func TestEventsStream(t *testing.T) {
	live := make(chan events.Message)
	cancelled := make(chan struct{})
	type sub struct {
		since, until time.Time
		filters      Filters
	}
	subs := make(chan sub, 1)
	b := &fakeBackend{events: func(_ context.Context, since, until time.Time, f Filters) ([]events.Message, <-chan events.Message, func()) {
		subs <- sub{since, until, f}
		past := []events.Message{{Type: events.ContainerEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "c1"}}}
		return past, live, func() { close(cancelled) }
	}}
	ts := startServer(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := ts.client(t).Events(ctx, client.EventsListOptions{
		Since:   "1700000000",
		Filters: make(client.Filters).Add("type", "container").Add("event", "start", "die"),
	})
	next := func() events.Message {
		t.Helper()
		select {
		case m := <-res.Messages:
			return m
		case err := <-res.Err:
			t.Fatalf("events: %v", err)
		}
		return events.Message{}
	}
	if m := next(); m.Action != events.ActionCreate || m.Actor.ID != "c1" {
		t.Errorf("first event %+v", m)
	}
	s := <-subs
	if !s.since.Equal(time.Unix(1700000000, 0)) || !s.until.IsZero() ||
		!slices.Equal(s.filters["type"], []string{"container"}) || !slices.Equal(s.filters["event"], []string{"die", "start"}) {
		t.Errorf("subscription %+v", s)
	}
	for i := range 3 {
		id := "c" + strconv.Itoa(i+2)
		live <- events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: id}}
		if m := next(); m.Actor.ID != id || m.Action != events.ActionStart {
			t.Errorf("live event %+v, want start of %s", m, id)
		}
	}
	cancel()
	<-cancelled
}

func TestEventsPastOnly(t *testing.T) {
	b := &fakeBackend{events: func(_ context.Context, since, until time.Time, f Filters) ([]events.Message, <-chan events.Message, func()) {
		return []events.Message{{Action: events.ActionDie}, {Action: events.ActionDestroy}}, nil, func() {}
	}}
	ts := startServer(t, b)
	res := ts.client(t).Events(context.Background(), client.EventsListOptions{Since: "1", Until: "2"})
	var got []events.Action
	// The client yields io.EOF on Err when the stream ends.
	for done := false; !done; {
		select {
		case m := <-res.Messages:
			got = append(got, m.Action)
		case err := <-res.Err:
			if !errors.Is(err, io.EOF) {
				t.Errorf("events: %v", err)
			}
			done = true
		}
	}
	if !slices.Equal(got, []events.Action{events.ActionDie, events.ActionDestroy}) {
		t.Errorf("events %v", got)
	}
}

func TestEventsBadQuery(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	tests := []struct{ query, message string }{
		{"?since=10&until=5", "since time (10) cannot be after until time (5)"},
		{"?since=yesterday", `invalid timestamp "yesterday": strconv.ParseInt: parsing "yesterday": invalid syntax`},
		{"?filters=%5B1%5D", `invalid filters parameter "[1]": json: cannot unmarshal array into Go value of type map[string][]string`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := ts.do(t, "GET", "/events"+tt.query, "", "")
			if resp.StatusCode != 400 || errorMessage(t, body) != tt.message {
				t.Errorf("%d %q, want 400 %q", resp.StatusCode, body, tt.message)
			}
		})
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	live := make(chan events.Message)
	b := &fakeBackend{events: func(context.Context, time.Time, time.Time, Filters) ([]events.Message, <-chan events.Message, func()) {
		return nil, live, func() {}
	}}
	ts := startServer(t, b)
	res := ts.client(t).Events(context.Background(), client.EventsListOptions{})
	// Wait for the stream to be open: one event goes through.
	live <- events.Message{Action: events.ActionStart}
	<-res.Messages
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-res.Err; !errors.Is(err, io.EOF) {
		t.Errorf("events after shutdown: %v, want the stream to end", err)
	}
}

// TestForcedShutdownClosesHijacked checks that a Shutdown whose context
// has ended cancels the backend's context and cuts attached clients off.
func TestForcedShutdownClosesHijacked(t *testing.T) {
	attached := make(chan struct{})
	backendDone := make(chan error, 1)
	b := &fakeBackend{attach: func(ctx context.Context, _ string, o AttachOptions) error {
		stdin, _, _, err := o.GetStreams(true)
		if err != nil {
			return err
		}
		defer stdin.Close()
		close(attached)
		<-ctx.Done()
		backendDone <- ctx.Err()
		return ctx.Err()
	}}
	ts := startServer(t, b)
	res, err := ts.client(t).ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	<-attached
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("forced Shutdown: %v, want context.Canceled", err)
	}
	if err := <-backendDone; !errors.Is(err, context.Canceled) {
		t.Errorf("backend context: %v", err)
	}
	if _, err := io.ReadAll(res.Reader); err != nil {
		t.Errorf("client read after shutdown: %v, want EOF", err)
	}
}

// TestGracefulShutdownWaitsForSessions checks that Shutdown returns only
// after an attached session has ended, and that the client got all of it.
func TestGracefulShutdownWaitsForSessions(t *testing.T) {
	attached := make(chan struct{})
	release := make(chan struct{})
	var ended atomic.Bool
	b := &fakeBackend{attach: func(ctx context.Context, _ string, o AttachOptions) error {
		stdin, stdout, _, err := o.GetStreams(false)
		if err != nil {
			return err
		}
		defer stdin.Close()
		close(attached)
		<-release
		io.WriteString(stdout, "last words\n")
		ended.Store(true)
		return nil
	}}
	ts := startServer(t, b)
	res, err := ts.client(t).ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	<-attached
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- ts.srv.Shutdown(context.Background()) }()
	// Once the listener is closed, Shutdown is under way.
	for {
		c, err := net.Dial("unix", ts.sock)
		if err != nil {
			break
		}
		c.Close()
		runtime.Gosched()
	}
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned (%v) while a session was attached", err)
	default:
	}
	close(release)
	out, err := io.ReadAll(res.Reader)
	res.Close()
	if err != nil || string(out) != "last words\n" {
		t.Errorf("client read %q, %v", out, err)
	}
	if err := <-shutdownErr; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if !ended.Load() {
		t.Error("Shutdown returned before the session ended")
	}
}
