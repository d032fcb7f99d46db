package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// EnginePorts follows the engine's containers through its Docker API on a
// unix socket and keeps Ports holding the ports they publish: a container
// that starts publishes each host binding of its NetworkSettings.Ports with
// the target containerIP:containerPort; one that dies or is removed
// withdraws them. Each time the event stream is (re)opened the running
// containers are listed again, so that the set stays right across engine
// restarts.
type EnginePorts struct {
	// Socket is the engine's Docker API socket.
	Socket string
	// Ports receives Publish and Withdraw.
	Ports *PortBroadcaster
	// Binds, when set, learns the bind-mount sources of the running
	// containers.
	Binds BindSink
	// Retry is the wait before reconnecting (1 s when zero).
	Retry time.Duration
	// Log receives what goes wrong; nil discards.
	Log *slog.Logger

	mu        sync.Mutex
	published map[string][]publishedPort // container ID -> its ports
	bound     map[string]bool            // containers Binds knows sources of
	client    *http.Client
}

// publishedPort is one port a container published through Ports.
type publishedPort struct {
	proto    string
	hostIP   string
	hostPort int
}

// watchedActions are the container events that change published ports.
var watchedActions = []events.Action{events.ActionStart, events.ActionDie, events.ActionDestroy}

// Run follows the engine until ctx is done, reconnecting after errors
// (the engine not up yet, restarted, or the stream cut).
func (w *EnginePorts) Run(ctx context.Context) {
	retry := w.Retry
	if retry <= 0 {
		retry = time.Second
	}
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		w.log().Debug("engine ports: following the engine's events", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func (w *EnginePorts) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

func (w *EnginePorts) httpClient() *http.Client {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.client == nil {
		sock := w.Socket
		w.client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableCompression: true,
		}}
	}
	return w.client
}

// follow opens the event stream, resynchronises from the container list,
// then applies events until the stream ends.
func (w *EnginePorts) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	filters := map[string][]string{"type": {string(events.ContainerEventType)}}
	for _, a := range watchedActions {
		filters["event"] = append(filters["event"], string(a))
	}
	fj, err := json.Marshal(filters)
	if err != nil {
		return err
	}
	resp, err := w.get(ctx, "/events?filters="+url.QueryEscape(string(fj)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Events from here on are seen; the list covers what came before.
	if err := w.resync(ctx); err != nil {
		return err
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m events.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("engine ports: event stream ended: %w", err)
			}
			return fmt.Errorf("engine ports: read event: %w", err)
		}
		if m.Type != events.ContainerEventType || m.Actor.ID == "" {
			continue
		}
		switch m.Action {
		case events.ActionStart:
			if err := w.refresh(ctx, m.Actor.ID); err != nil {
				w.log().Warn("engine ports: container started", "id", m.Actor.ID, "err", err)
			}
		case events.ActionDie, events.ActionDestroy:
			w.withdraw(m.Actor.ID)
		}
	}
}

func (w *EnginePorts) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("engine ports: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &engineStatusError{path: path, code: resp.StatusCode, body: string(b)}
	}
	return resp, nil
}

// engineStatusError is a non-200 answer of the engine.
type engineStatusError struct {
	path string
	code int
	body string
}

func (e *engineStatusError) Error() string {
	return fmt.Sprintf("engine ports: GET %s: status %d: %s", e.path, e.code, e.body)
}

func (w *EnginePorts) getJSON(ctx context.Context, path string, v any) error {
	resp, err := w.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("engine ports: decode GET %s: %w", path, err)
	}
	return nil
}

// resync lists the running containers: those no longer running withdraw
// their ports, the others (re)publish theirs.
func (w *EnginePorts) resync(ctx context.Context) error {
	var list []container.Summary
	if err := w.getJSON(ctx, "/containers/json", &list); err != nil {
		return err
	}
	running := map[string]bool{}
	for _, c := range list {
		running[c.ID] = true
	}
	w.mu.Lock()
	var gone []string
	for id := range w.published {
		if !running[id] {
			gone = append(gone, id)
		}
	}
	for id := range w.bound {
		if !running[id] && w.published[id] == nil {
			gone = append(gone, id)
		}
	}
	w.mu.Unlock()
	for _, id := range gone {
		w.withdraw(id)
	}
	for _, c := range list {
		if err := w.refresh(ctx, c.ID); err != nil {
			w.log().Warn("engine ports: running container", "id", c.ID, "err", err)
		}
	}
	return nil
}

// refresh inspects a container and publishes its ports in place of those
// published for it before. A container that is gone or no longer running
// withdraws its ports.
func (w *EnginePorts) refresh(ctx context.Context, id string) error {
	var ins container.InspectResponse
	err := w.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", &ins)
	var se *engineStatusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		w.withdraw(id)
		return nil
	}
	if err != nil {
		return err
	}
	var ports []publishedPort
	var targets []string
	var binds []string
	if ins.State != nil && ins.State.Running {
		ports, targets = containerPorts(ins.NetworkSettings)
		for _, m := range ins.Mounts {
			if m.Type == mount.TypeBind && m.Source != "" {
				binds = append(binds, m.Source)
			}
		}
	}
	if w.Binds != nil {
		w.Binds.SetBinds(id, binds)
		w.mu.Lock()
		if w.bound == nil {
			w.bound = map[string]bool{}
		}
		if len(binds) > 0 {
			w.bound[id] = true
		} else {
			delete(w.bound, id)
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	old := w.published[id]
	if w.published == nil {
		w.published = map[string][]publishedPort{}
	}
	if len(ports) == 0 {
		delete(w.published, id)
	} else {
		w.published[id] = ports
	}
	w.mu.Unlock()
	keep := map[publishedPort]bool{}
	for _, p := range ports {
		keep[p] = true
	}
	for _, p := range old {
		if !keep[p] {
			w.Ports.Withdraw(p.proto, p.hostIP, p.hostPort)
		}
	}
	for i, p := range ports {
		w.Ports.Publish(p.proto, p.hostIP, p.hostPort, targets[i])
	}
	return nil
}

// withdraw withdraws every port published for a container.
func (w *EnginePorts) withdraw(id string) {
	if w.Binds != nil {
		w.Binds.SetBinds(id, nil)
	}
	w.mu.Lock()
	delete(w.bound, id)
	old := w.published[id]
	delete(w.published, id)
	w.mu.Unlock()
	for _, p := range old {
		w.Ports.Withdraw(p.proto, p.hostIP, p.hostPort)
	}
}

// containerPorts turns a container's port bindings into the ports to
// publish and their targets (containerIP:containerPort). The container's
// address is that on the "bridge" network, else on any network that has
// one; without an address (host or no network) nothing is published. A
// binding on "::" is left out when the same port is bound on an IPv4
// address: the host's listener on 0.0.0.0 takes that port already.
func containerPorts(ns *container.NetworkSettings) ([]publishedPort, []string) {
	if ns == nil || len(ns.Ports) == 0 {
		return nil, nil
	}
	ip := containerIP(ns.Networks)
	if !ip.IsValid() {
		return nil, nil
	}
	type bound struct {
		proto string
		port  int
	}
	v4 := map[bound]bool{}
	for port, bindings := range ns.Ports {
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				continue
			}
			if !b.HostIP.IsValid() || b.HostIP.Is4() || b.HostIP.Is4In6() {
				v4[bound{string(port.Proto()), hp}] = true
			}
		}
	}
	var ports []publishedPort
	var targets []string
	seen := map[publishedPort]bool{}
	for port, bindings := range ns.Ports {
		proto := string(port.Proto())
		if proto != "tcp" && proto != "udp" {
			continue
		}
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp <= 0 || hp > 65535 {
				continue
			}
			hostIP := "0.0.0.0"
			if b.HostIP.IsValid() {
				if b.HostIP.Is6() && !b.HostIP.Is4In6() && v4[bound{proto, hp}] {
					continue
				}
				hostIP = b.HostIP.Unmap().String()
			}
			p := publishedPort{proto: proto, hostIP: hostIP, hostPort: hp}
			if seen[p] {
				continue
			}
			seen[p] = true
			ports = append(ports, p)
			targets = append(targets, net.JoinHostPort(ip.String(), strconv.Itoa(int(port.Num()))))
		}
	}
	return ports, targets
}

// bridgeNetwork is the engine's default network.
const bridgeNetwork = "bridge"

func containerIP(nets map[string]*network.EndpointSettings) netip.Addr {
	if es := nets[bridgeNetwork]; es != nil && es.IPAddress.IsValid() {
		return es.IPAddress
	}
	var best netip.Addr
	var bestName string
	for name, es := range nets {
		if es == nil || !es.IPAddress.IsValid() {
			continue
		}
		// The same choice on every call: the first name in order.
		if !best.IsValid() || name < bestName {
			best, bestName = es.IPAddress, name
		}
	}
	return best
}
