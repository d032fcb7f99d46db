package hostlink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/hostlink/linktest"
)

// fakeControl is a control API server standing in for the guest's.
type fakeControl struct {
	mu       sync.Mutex
	clock    int64
	shutdown bool
	events   []string
}

func (f *fakeControl) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"state":"running","engine":"ready","versions":{"agent":"0.1.0","kernel":"6.1.0-cloud"},"uptimeSeconds":12.5}`)
	})
	mux.HandleFunc("GET /disk", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"dataRoot":"/var/lib/berth","totalBytes":1000,"usedBytes":300,"freeBytes":700}`)
	})
	mux.HandleFunc("POST /time", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			UnixNano int64 `json:"unixNano"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.UnixNano == 0 {
			http.Error(w, "bad time", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.clock = body.UnixNano
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.shutdown = true
		f.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, e := range f.events {
			io.WriteString(w, e+"\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	})
	return mux
}

// oneConnListener hands connections from the channel to an http.Server.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.UnixAddr{Name: "control", Net: "unix"} }

func startControl(t *testing.T, f *fakeControl) *hostlink.Client {
	ln := &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: f.handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	path := filepath.Join(t.TempDir(), "link.sock")
	linktest.StartSerialGuest(t, path, map[uint32]func(net.Conn){
		1024: func(c net.Conn) {
			select {
			case ln.ch <- c:
			case <-ln.done:
				c.Close()
			}
		},
	})
	d := hostlink.NewSerial(path, nil)
	t.Cleanup(func() { d.Close() })
	c := hostlink.NewClient(d)
	t.Cleanup(c.Close)
	return c
}

func TestControlClient(t *testing.T) {
	f := &fakeControl{events: []string{
		`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":8080,"target":"172.17.0.2:80"}`,
		`{"type":"volume","action":"created"}`,
		``,
		`{"type":"port","action":"withdrawn","proto":"udp","hostIP":"127.0.0.1","hostPort":53,"target":"172.17.0.3:53"}`,
	}}
	c := startControl(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := hostlink.Status{State: "running", Engine: hostlink.EngineReady, Versions: hostlink.Versions{Agent: "0.1.0", Kernel: "6.1.0-cloud"}, UptimeSeconds: 12.5}
	if st != want {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	disk, err := c.Disk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if disk != (hostlink.Disk{DataRoot: "/var/lib/berth", TotalBytes: 1000, UsedBytes: 300, FreeBytes: 700}) {
		t.Fatalf("disk %+v", disk)
	}
	now := time.Unix(1700000000, 123)
	if err := c.SetTime(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if f.clock != now.UnixNano() || !f.shutdown {
		t.Fatalf("guest clock %d shutdown %v", f.clock, f.shutdown)
	}
	f.mu.Unlock()

	evctx, evcancel := context.WithCancel(ctx)
	es, err := c.Events(evctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := es.Next()
	if err != nil || e.HostPort != 8080 || e.Action != hostlink.ActionPublished || e.Target != "172.17.0.2:80" {
		t.Fatalf("first event %+v, %v", e, err)
	}
	if _, err := es.Next(); !errors.Is(err, hostlink.ErrUnknownEvent) {
		t.Fatalf("second event error %v, want hostlink.ErrUnknownEvent", err)
	}
	e, err = es.Next()
	if err != nil || e.Proto != "udp" || e.Action != hostlink.ActionWithdrawn {
		t.Fatalf("third event %+v, %v", e, err)
	}
	evcancel()
	if _, err := es.Next(); err == nil {
		t.Fatal("event stream did not end after cancel")
	}
	es.Close()
}

func TestControlErrorStatus(t *testing.T) {
	c := startControl(t, &fakeControl{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.SetTime(ctx, time.Unix(0, 0)) // the fake refuses a zero clock
	var se *hostlink.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Fatalf("error %v, want a 400 StatusError", err)
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		line    string
		wantErr bool
		unknown bool
	}{
		{`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":8080,"target":"172.17.0.2:80"}`, false, false},
		{`{"type":"port","action":"withdrawn","proto":"udp","hostIP":"::1","hostPort":1,"target":"[fd00::2]:53"}`, false, false},
		{`{"type":"port","action":"published","proto":"tcp","hostPort":8080,"target":"172.17.0.2:80"}`, false, false},
		{`{"type":"port","action":"published","proto":"sctp","hostIP":"0.0.0.0","hostPort":8080,"target":"172.17.0.2:80"}`, true, false},
		{`{"type":"port","action":"moved","proto":"tcp","hostIP":"0.0.0.0","hostPort":8080,"target":"172.17.0.2:80"}`, true, false},
		{`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":70000,"target":"172.17.0.2:80"}`, true, false},
		{`{"type":"port","action":"published","proto":"tcp","hostIP":"zero","hostPort":80,"target":"172.17.0.2:80"}`, true, false},
		{`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":80,"target":"web:80"}`, true, false},
		{`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":80,"target":"172.17.0.2"}`, true, false},
		{`{"type":"disk"}`, true, true},
		{`not json`, true, false},
		{`{"type":"port","hostPort":"80"}`, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			_, err := hostlink.ParseEvent([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if errors.Is(err, hostlink.ErrUnknownEvent) != tc.unknown {
				t.Fatalf("error %v, want unknown %v", err, tc.unknown)
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"port","action":"published","proto":"tcp","hostIP":"0.0.0.0","hostPort":8080,"target":"172.17.0.2:80"}`))
	f.Add([]byte(`{"type":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := hostlink.ParseEvent(line)
		if err != nil {
			return
		}
		// Whatever parses must be valid and survive a round trip.
		if err := e.Validate(); err != nil {
			t.Fatalf("parsed event invalid: %v", err)
		}
		b, _ := json.Marshal(e)
		e2, err := hostlink.ParseEvent(b)
		if err != nil || e2 != e {
			t.Fatalf("round trip %+v -> %s -> %+v, %v", e, b, e2, err)
		}
	})
}

func FuzzEventStream(f *testing.F) {
	f.Add("{\"type\":\"port\",\"action\":\"published\",\"proto\":\"tcp\",\"hostPort\":1,\"target\":\"1.2.3.4:5\"}\n\n{}\n")
	f.Fuzz(func(t *testing.T, s string) {
		es := hostlink.NewEventStream(io.NopCloser(strings.NewReader(s)))
		for i := 0; ; i++ {
			if i > len(s)+1 {
				t.Fatal(fmt.Sprintf("stream of %d bytes yielded more than %d results", len(s), i))
			}
			_, err := es.Next()
			if err == io.EOF || (err != nil && !errors.Is(err, hostlink.ErrUnknownEvent) && strings.HasPrefix(err.Error(), "read events")) {
				return
			}
		}
	})
}

// stagedControl reports the engine starting for a few calls, then final.
type stagedControl struct {
	mu    sync.Mutex
	calls int
	final string
}

func (s *stagedControl) serve(c net.Conn) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls++
		engine := hostlink.EngineStarting
		if s.calls > 3 {
			engine = s.final
		}
		s.mu.Unlock()
		fmt.Fprintf(w, `{"state":"running","engine":%q,"versions":{"agent":"a","kernel":"k"},"uptimeSeconds":1}`, engine)
	})}
	ln := &chanListener{ch: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.ch <- c
	go srv.Serve(ln)
}

func TestWaitReady(t *testing.T) {
	tests := []struct {
		final   string
		wantErr error
	}{
		{hostlink.EngineReady, nil},
		{hostlink.EngineFailed, hostlink.ErrEngineFailed},
	}
	for _, tc := range tests {
		t.Run(tc.final, func(t *testing.T) {
			s := &stagedControl{final: tc.final}
			path := filepath.Join(t.TempDir(), "link.sock")
			linktest.StartSerialGuest(t, path, map[uint32]func(net.Conn){1024: s.serve})
			d := hostlink.NewSerial(path, nil)
			defer d.Close()
			c := hostlink.NewClient(d)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var seen []string
			st, err := c.WaitReady(ctx, func(st hostlink.Status) { seen = append(seen, st.Engine) })
			if !errors.Is(err, tc.wantErr) || st.Engine != tc.final {
				t.Fatalf("WaitReady: %+v, %v", st, err)
			}
			if len(seen) != 4 || seen[0] != hostlink.EngineStarting {
				t.Fatalf("progress %q", seen)
			}
		})
	}
}

func TestWaitReadyGivesUp(t *testing.T) {
	// No guest at all: the socket does not exist.
	d := hostlink.NewSerial(filepath.Join(t.TempDir(), "none.sock"), nil)
	c := hostlink.NewClient(d)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.WaitReady(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady without a guest: %v", err)
	}
}

// TestKeepTimeSetsAtOnce: the guest clock is set when KeepTime starts.
func TestKeepTimeSetsAtOnce(t *testing.T) {
	f := &fakeControl{}
	c := startControl(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.KeepTime(ctx, 10*time.Millisecond, nil); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		f.mu.Lock()
		clock := f.clock
		f.mu.Unlock()
		if clock != 0 {
			if d := time.Since(time.Unix(0, clock)); d < 0 || d > time.Minute {
				t.Fatalf("guest clock set %v away from now", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("guest clock never set")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
