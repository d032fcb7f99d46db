package link

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// fakeEngine serves the three endpoints EnginePorts uses, in the wire
// shapes of the Docker API, from a table of containers the test edits.
type fakeEngine struct {
	t          *testing.T
	mu         sync.Mutex
	containers map[string]container.InspectResponse
	streams    chan chan events.Message // one per GET /events
	filters    chan string
}

func newFakeEngine(t *testing.T) (*fakeEngine, string) {
	f := &fakeEngine{t: t, containers: map[string]container.InspectResponse{}, streams: make(chan chan events.Message, 4), filters: make(chan string, 4)}
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		f.filters <- r.URL.Query().Get("filters")
		ch := make(chan events.Message)
		f.streams <- ch
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					return // the engine went away
				}
				enc.Encode(m)
				http.NewResponseController(w).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		list := []container.Summary{}
		for id, c := range f.containers {
			if c.State != nil && c.State.Running {
				list = append(list, container.Summary{ID: id, State: container.StateRunning})
			}
		}
		json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		c, ok := f.containers[r.PathValue("id")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such container: ` + r.PathValue("id") + `"}`))
			return
		}
		json.NewEncoder(w).Encode(c)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f, sock
}

// set records a container: running with ip on the bridge and the
// bindings "80/tcp" -> {"0.0.0.0", "8080"}, ...
func (f *fakeEngine) set(id string, running bool, ip string, ports map[string][][2]string) {
	pm := network.PortMap{}
	for p, bs := range ports {
		port, err := network.ParsePort(p)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, b := range bs {
			pb := network.PortBinding{HostPort: b[1]}
			if b[0] != "" {
				pb.HostIP = netip.MustParseAddr(b[0])
			}
			pm[port] = append(pm[port], pb)
		}
	}
	nets := map[string]*network.EndpointSettings{}
	if ip != "" {
		nets["bridge"] = &network.EndpointSettings{IPAddress: netip.MustParseAddr(ip)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = container.InspectResponse{
		ID:              id,
		State:           &container.State{Running: running},
		NetworkSettings: &container.NetworkSettings{Ports: pm, Networks: nets},
	}
}

func (f *fakeEngine) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeEngine) stream(t *testing.T) chan events.Message {
	select {
	case ch := <-f.streams:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not open GET /events")
		return nil
	}
}

func containerEvent(id string, a events.Action) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: a, Actor: events.Actor{ID: id}, Scope: "local", TimeNano: time.Now().UnixNano()}
}

func nextPortEvent(t *testing.T, ch <-chan PortEvent) PortEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("port events closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no port event")
	}
	return PortEvent{}
}

func TestEnginePortsFollowsContainers(t *testing.T) {
	f, sock := newFakeEngine(t)
	// Running before the watcher starts: published from the list.
	f.set("a", true, "172.17.0.2", map[string][][2]string{"80/tcp": {{"0.0.0.0", "8080"}, {"::", "8080"}}})
	f.set("stopped", false, "", map[string][][2]string{"81/tcp": {{"", "8081"}}})
	ports := NewPortBroadcaster(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := ports.SubscribePorts(ctx)
	w := &EnginePorts{Socket: sock, Ports: ports, Retry: 10 * time.Millisecond}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	events1 := f.stream(t)
	if got := <-f.filters; !strings.Contains(got, `"type":["container"]`) || !strings.Contains(got, `"event":["start","die","destroy"]`) {
		t.Fatalf("filters %s", got)
	}
	want := PortEvent{Type: "port", Action: ActionPublished, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080, Target: "172.17.0.2:80"}
	if e := nextPortEvent(t, sub); e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}

	// A container starting publishes its ports, UDP on its host address.
	f.set("b", true, "172.17.0.3", map[string][][2]string{"53/udp": {{"127.0.0.1", "5353"}}})
	events1 <- containerEvent("b", events.ActionStart)
	want = PortEvent{Type: "port", Action: ActionPublished, Proto: "udp", HostIP: "127.0.0.1", HostPort: 5353, Target: "172.17.0.3:53"}
	if e := nextPortEvent(t, sub); e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}

	// Dying withdraws.
	f.set("a", false, "", nil)
	events1 <- containerEvent("a", events.ActionDie)
	want = PortEvent{Type: "port", Action: ActionWithdrawn, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080, Target: "172.17.0.2:80"}
	if e := nextPortEvent(t, sub); e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}

	// The engine goes away; b is removed meanwhile and c runs: the
	// reconnect withdraws b and publishes c.
	f.remove("b")
	f.set("c", true, "172.17.0.4", map[string][][2]string{"80/tcp": {{"", "9090"}}})
	close(events1)
	events2 := f.stream(t)
	got := map[string]PortEvent{}
	for range 2 {
		e := nextPortEvent(t, sub)
		got[e.Action] = e
	}
	if e := got[ActionWithdrawn]; e.Proto != "udp" || e.HostPort != 5353 {
		t.Fatalf("after reconnect: %+v", got)
	}
	if e := got[ActionPublished]; e.Proto != "tcp" || e.HostPort != 9090 || e.HostIP != "0.0.0.0" || e.Target != "172.17.0.4:80" {
		t.Fatalf("after reconnect: %+v", got)
	}

	// A start event for a container already gone (removed at once) does
	// nothing; destroy of c withdraws.
	events2 <- containerEvent("gone", events.ActionStart)
	events2 <- containerEvent("c", events.ActionDestroy)
	if e := nextPortEvent(t, sub); e.Action != ActionWithdrawn || e.HostPort != 9090 {
		t.Fatalf("got %+v", e)
	}
	cancel()
	<-done
}

func TestContainerPorts(t *testing.T) {
	port := func(s string) network.Port { p, _ := network.ParsePort(s); return p }
	ns := &container.NetworkSettings{
		Networks: map[string]*network.EndpointSettings{
			"zzz":    {IPAddress: netip.MustParseAddr("10.0.0.9")},
			"bridge": {IPAddress: netip.MustParseAddr("172.17.0.2")},
		},
		Ports: network.PortMap{
			port("80/tcp"):   {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}, {HostIP: netip.MustParseAddr("::"), HostPort: "8080"}},
			port("443/tcp"):  {{HostIP: netip.MustParseAddr("::1"), HostPort: "8443"}},
			port("53/udp"):   {{HostPort: "53"}},
			port("22/tcp"):   nil, // exposed, not published
			port("9/tcp"):    {{HostPort: ""}},
			port("132/sctp"): {{HostPort: "132"}},
		},
	}
	ports, targets := containerPorts(ns)
	got := map[string]string{}
	for i, p := range ports {
		got[p.proto+" "+net.JoinHostPort(p.hostIP, itoa(p.hostPort))] = targets[i]
	}
	want := map[string]string{
		"tcp 0.0.0.0:8080": "172.17.0.2:80",
		"tcp [::1]:8443":   "172.17.0.2:443",
		"udp 0.0.0.0:53":   "172.17.0.2:53",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Without a bridge the first network by name; without any address
	// nothing.
	delete(ns.Networks, "bridge")
	if _, targets := containerPorts(ns); len(targets) == 0 || !strings.HasPrefix(targets[0], "10.0.0.9:") {
		t.Fatalf("targets %v", targets)
	}
	ns.Networks = map[string]*network.EndpointSettings{"host": {}}
	if ports, _ := containerPorts(ns); len(ports) != 0 {
		t.Fatalf("host network published %v", ports)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// FuzzContainerPorts decodes inspect answers as the engine could send them
// and checks what would be published.
func FuzzContainerPorts(f *testing.F) {
	f.Add([]byte(`{"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}]},"Networks":{"bridge":{"IPAddress":"172.17.0.2"}}}}`))
	f.Add([]byte(`{"NetworkSettings":{"Ports":{"53/udp":[{"HostIp":"","HostPort":"99999"}]},"Networks":{"n":{"IPAddress":"fd00::2"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ins container.InspectResponse
		if json.Unmarshal(data, &ins) != nil {
			return
		}
		ports, targets := containerPorts(ins.NetworkSettings)
		if len(ports) != len(targets) {
			t.Fatalf("%d ports, %d targets", len(ports), len(targets))
		}
		for i, p := range ports {
			if p.hostPort <= 0 || p.hostPort > 65535 || (p.proto != "tcp" && p.proto != "udp") {
				t.Fatalf("bad port %+v", p)
			}
			if _, err := netip.ParseAddr(p.hostIP); err != nil {
				t.Fatalf("host IP %q: %v", p.hostIP, err)
			}
			if _, err := netip.ParseAddrPort(targets[i]); err != nil {
				t.Fatalf("target %q: %v", targets[i], err)
			}
		}
	})
}
