//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/network"
)

// The network routes of the Docker API (api.NetworkBackend).

func (e *Engine) networker() (Networker, error) {
	if e.cfg.Network == nil {
		return nil, errUnavailable{errors.New("networks are not available on this engine (it runs without a bridge)")}
	}
	return e.cfg.Network, nil
}

// NetworkList implements api.NetworkBackend.
func (e *Engine) NetworkList(ctx context.Context, f api.Filters) ([]mnetwork.Summary, error) {
	nw, err := e.networker()
	if err != nil {
		return nil, err
	}
	for k := range f {
		switch k {
		case "dangling", "driver", "id", "label", "name", "scope", "type":
		default:
			return nil, invalid("invalid filter '%s'", k)
		}
	}
	var dangling *bool
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalid("invalid filter 'dangling=%s'", v)
		}
		dangling = &b
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, invalid("invalid filter: 'type'='%s'", v)
		}
	}
	used := e.networksInUse()
	out := []mnetwork.Summary{}
	for _, n := range nw.List() {
		if !matchAny(f["name"], func(v string) bool { return strings.Contains(n.Name, v) }) ||
			!matchAny(f["id"], func(v string) bool { return strings.Contains(n.ID, v) }) ||
			!matchAny(f["driver"], func(v string) bool { return v == n.Driver }) ||
			!matchAny(f["scope"], func(v string) bool { return v == "local" }) ||
			!matchAny(f["type"], func(v string) bool { return (v == "builtin") == n.Predefined }) ||
			!matchLabels(n.Labels, f["label"]) {
			continue
		}
		if dangling != nil && *dangling != (!n.Predefined && !used[n.ID]) {
			continue
		}
		out = append(out, mnetwork.Summary{Network: apiNetwork(n)})
	}
	return out, nil
}

func matchAny(want []string, ok func(string) bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if ok(w) {
			return true
		}
	}
	return false
}

// networksInUse are the ids of networks some container is connected to,
// running or not.
func (e *Engine) networksInUse() map[string]bool {
	used := map[string]bool{}
	for _, c := range e.containers() {
		c.mu.Lock()
		for _, s := range c.m.Nets {
			if s != nil && s.NetworkID != "" {
				used[s.NetworkID] = true
			}
		}
		c.mu.Unlock()
	}
	return used
}

func apiNetwork(n network.Network) mnetwork.Network {
	out := mnetwork.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv4: n.Driver == "bridge", Internal: n.Internal, Attachable: n.Attachable,
		IPAM:    mnetwork.IPAM{Driver: "default", Options: map[string]string{}, Config: []mnetwork.IPAMConfig{}},
		Options: n.Options, Labels: n.Labels,
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, mnetwork.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange})
	}
	return out
}

// NetworkInspect implements api.NetworkBackend.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (*mnetwork.Inspect, error) {
	nw, err := e.networker()
	if err != nil {
		return nil, err
	}
	n, err := nw.Find(ref)
	if err != nil {
		return nil, err
	}
	resp := &mnetwork.Inspect{Network: apiNetwork(n), Containers: map[string]mnetwork.EndpointResource{}}
	for _, c := range e.containers() {
		c.mu.Lock()
		for _, ep := range c.m.Endpoints {
			if ep.NetworkID != n.ID {
				continue
			}
			r := mnetwork.EndpointResource{
				Name: strings.TrimPrefix(c.m.Name, "/"), EndpointID: ep.ID,
				IPv4Address: netip.PrefixFrom(ep.IP, ep.PrefixLen),
			}
			if hw, err := net.ParseMAC(ep.MAC); err == nil {
				r.MacAddress = mnetwork.HardwareAddr(hw)
			}
			resp.Containers[c.m.ID] = r
		}
		c.mu.Unlock()
	}
	return resp, nil
}

// NetworkCreate implements api.NetworkBackend.
func (e *Engine) NetworkCreate(ctx context.Context, req mnetwork.CreateRequest) (*mnetwork.CreateResponse, error) {
	nw, err := e.networker()
	if err != nil {
		return nil, err
	}
	if req.Name == "bridge" || req.Name == "host" || req.Name == "none" || req.Name == "default" {
		return nil, errForbidden{fmt.Errorf("%s is a pre-defined network and cannot be created", req.Name)}
	}
	if req.Scope != "" && req.Scope != "local" {
		return nil, errNotImplemented{fmt.Errorf("network scope %q is not supported: this engine has local networks only", req.Scope)}
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return nil, errNotImplemented{errors.New("config-only and ingress networks are not supported")}
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, errNotImplemented{errors.New("IPv6 networks are not supported by this engine")}
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return nil, errNotImplemented{errors.New("networks without IPv4 are not supported by this engine")}
	}
	cr := network.CreateRequest{
		Name: req.Name, Driver: req.Driver, Internal: req.Internal, Attachable: req.Attachable,
		Options: req.Options, Labels: req.Labels,
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, notFound("plugin %q not found", req.IPAM.Driver)
		}
		switch len(req.IPAM.Config) {
		case 0:
		case 1:
			c := req.IPAM.Config[0]
			cr.Subnet, cr.Gateway, cr.IPRange = c.Subnet, c.Gateway, c.IPRange
		default:
			return nil, errNotImplemented{errors.New("networks with several subnets are not supported by this engine")}
		}
	}
	n, err := nw.Create(cr)
	if err != nil {
		return nil, err
	}
	e.emitNetwork(n, events.ActionCreate, nil)
	return &mnetwork.CreateResponse{ID: n.ID}, nil
}

// NetworkRemove implements api.NetworkBackend.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	nw, err := e.networker()
	if err != nil {
		return err
	}
	n, err := nw.Find(ref)
	if err != nil {
		return err
	}
	if err := nw.Remove(n.ID); err != nil {
		return err
	}
	e.emitNetwork(n, events.ActionDestroy, nil)
	return nil
}

// NetworkPrune implements api.NetworkBackend: user-defined networks no
// container is attached to go.
func (e *Engine) NetworkPrune(ctx context.Context, f api.Filters) (*mnetwork.PruneReport, error) {
	nw, err := e.networker()
	if err != nil {
		return nil, err
	}
	var until time.Time
	for k, vs := range f {
		switch k {
		case "label", "label!":
		case "until":
			for _, v := range vs {
				t, err := parseTimestamp(v, time.Now())
				if err != nil {
					return nil, invalid("invalid filter 'until=%s': %v", v, err)
				}
				until = t
			}
		default:
			return nil, invalid("invalid filter '%s'", k)
		}
	}
	rep := &mnetwork.PruneReport{NetworksDeleted: []string{}}
	for _, n := range nw.List() {
		if n.Predefined || !until.IsZero() && !n.Created.Before(until) ||
			!matchLabels(n.Labels, f["label"]) || len(f["label!"]) > 0 && matchAnyLabel(n.Labels, f["label!"]) {
			continue
		}
		if err := nw.Remove(n.ID); err != nil {
			// In use: kept, as dockerd keeps it.
			continue
		}
		e.emitNetwork(n, events.ActionDestroy, nil)
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	sort.Strings(rep.NetworksDeleted)
	return rep, nil
}

// NetworkConnect implements api.NetworkBackend: a running container gets
// the next interface at once; a stopped one on its next start.
func (e *Engine) NetworkConnect(ctx context.Context, ref string, req mnetwork.ConnectRequest) error {
	nw, err := e.networker()
	if err != nil {
		return err
	}
	n, err := nw.Find(ref)
	if err != nil {
		return err
	}
	c, err := e.lookup(req.Container)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return errForbidden{fmt.Errorf("container cannot be disconnected from host network or connected to host network")}
	}
	s := &mnetwork.EndpointSettings{}
	if req.EndpointConfig != nil {
		s = req.EndpointConfig.Copy()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !onBridge(&c.m) {
		return errForbidden{fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network")}
	}
	if _, ok := c.m.Nets[n.Name]; ok {
		return errForbidden{fmt.Errorf("endpoint with name %s already exists in network %s", strings.TrimPrefix(c.m.Name, "/"), n.Name)}
	}
	if err := checkEndpointSettings(n, s, &c.m); err != nil {
		return err
	}
	s.NetworkID = n.ID
	s.EndpointID, s.Gateway, s.IPAddress, s.IPPrefixLen = "", netip.Addr{}, netip.Addr{}, 0
	if c.m.Nets == nil {
		c.m.Nets = map[string]*mnetwork.EndpointSettings{}
		for _, name := range netsOf(&c.m) {
			c.m.Nets[name] = &mnetwork.EndpointSettings{}
		}
	}
	if c.h != nil && c.m.State.Running {
		o := attachOptions(s, nextIfName(c.m.Endpoints))
		o.DefaultRoute = !n.Internal && !hasDefaultRoute(c.m.Endpoints)
		ep, err := nw.Attach(n.ID, c.m.ID, c.h.Pid(), o)
		if err != nil {
			return fmt.Errorf("failed to connect container %s to network %s: %w", c.m.ID[:12], n.Name, err)
		}
		if c.m.Endpoints == nil {
			c.m.Endpoints = map[string]*network.Endpoint{}
		}
		c.m.Endpoints[n.Name] = ep
		c.m.Nets[n.Name] = s
		e.dns.add(n, c, ep)
		if n.UserDefined() && c.dnsSrv == nil && e.cfg.StartDNS != nil {
			if srv, err := e.cfg.StartDNS(fmt.Sprintf("/proc/%d/ns/net", c.h.Pid()), e.dns.namesFor(c.m.ID), upstreamsOf(&c.m)); err == nil {
				c.dnsSrv = srv
			} else {
				e.log.Warn("starting the embedded DNS server", "container", c.m.ID, "err", err)
			}
		}
		if err := e.writeHostsLocked(c); err != nil {
			e.log.Warn("updating /etc/hosts", "container", c.m.ID, "err", err)
		}
	} else {
		c.m.Nets[n.Name] = s
	}
	e.saveLocked(c)
	e.emitNetwork(n, events.ActionConnect, map[string]string{"container": c.m.ID})
	return nil
}

// NetworkDisconnect implements api.NetworkBackend.
func (e *Engine) NetworkDisconnect(ctx context.Context, ref string, req mnetwork.DisconnectRequest) error {
	nw, err := e.networker()
	if err != nil {
		return err
	}
	n, err := nw.Find(ref)
	if err != nil {
		return err
	}
	c, err := e.lookup(req.Container)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !onBridge(&c.m) {
		return errForbidden{fmt.Errorf("container cannot be disconnected from host network or connected to host network")}
	}
	in := false
	for _, name := range netsOf(&c.m) {
		if name == n.Name {
			in = true
		}
	}
	if !in {
		return errForbidden{fmt.Errorf("container %s is not connected to network %s", c.m.ID[:12], n.Name)}
	}
	if c.m.Nets == nil {
		c.m.Nets = map[string]*mnetwork.EndpointSettings{n.Name: {}}
	}
	if ep := c.m.Endpoints[n.Name]; ep != nil {
		nw.Detach(n.ID, c.m.ID)
		e.dns.remove(n.ID, c.m.ID)
		delete(c.m.Endpoints, n.Name)
	}
	delete(c.m.Nets, n.Name)
	if c.h != nil {
		if err := e.writeHostsLocked(c); err != nil {
			e.log.Warn("updating /etc/hosts", "container", c.m.ID, "err", err)
		}
	}
	e.saveLocked(c)
	e.emitNetwork(n, events.ActionDisconnect, map[string]string{"container": c.m.ID})
	return nil
}

func nextIfName(eps map[string]*network.Endpoint) string {
	used := map[string]bool{}
	for _, ep := range eps {
		used[ep.IfName] = true
	}
	for i := 0; ; i++ {
		if n := "eth" + strconv.Itoa(i); !used[n] {
			return n
		}
	}
}

func hasDefaultRoute(eps map[string]*network.Endpoint) bool {
	for _, ep := range eps {
		if ep.DefaultRoute {
			return true
		}
	}
	return false
}

// emitNetwork records a network event as dockerd words it.
func (e *Engine) emitNetwork(n network.Network, action events.Action, extra map[string]string) {
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	t := time.Now()
	e.events.publish(events.Message{
		Type: events.NetworkEventType, Action: action,
		Actor: events.Actor{ID: n.ID, Attributes: attrs},
		Scope: "local", Time: t.Unix(), TimeNano: t.UnixNano(),
	})
}
