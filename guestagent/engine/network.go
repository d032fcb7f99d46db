//go:build linux

package engine

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berthdesktop/berth/guestagent/network"
)

// Networker is the engine's networks (network.Manager): the predefined
// bridge, host and none, and user-defined bridges.
type Networker interface {
	List() []network.Network
	// Find looks a network up by name, id or unique id prefix; a
	// missing one is a network.NotFoundError.
	Find(nameOrID string) (network.Network, error)
	Create(req network.CreateRequest) (network.Network, error)
	// Remove refuses predefined networks and networks with containers
	// attached.
	Remove(nameOrID string) error
	// Attach connects the network namespace of pid as container id; on
	// error nothing is left behind.
	Attach(netID, id string, pid int, o network.AttachOptions) (*network.Endpoint, error)
	// Detach undoes Attach; unknown ids are ignored.
	Detach(netID, id string)
}

// DNSStarter starts the embedded DNS server in the network namespace at
// nsPath, answering with names and forwarding the rest to upstreams;
// Close stops it.
type DNSStarter func(nsPath string, names DNSNames, upstreams []netip.AddrPort) (io.Closer, error)

// DNSNames is what the embedded DNS server asks the engine.
type DNSNames interface {
	LookupIPv4(name string) ([]netip.Addr, bool)
	LookupPTR(addr netip.Addr) (string, bool)
}

// embeddedDNS is the address of the embedded DNS server in a container.
const embeddedDNS = "127.0.0.11"

// hostGatewayName resolves, in every container, to the address that
// reaches the host (daemon.json host-gateway-ip).
const hostGatewayName = "host.docker.internal"

// sandboxIndex knows the process of every running container by id, under
// its own lock, so that a container joining another's network namespace
// finds it while holding only its own lock.
type sandboxIndex struct {
	mu   sync.Mutex
	pids map[string]int
}

func (x *sandboxIndex) set(id string, pid int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.pids == nil {
		x.pids = map[string]int{}
	}
	if pid == 0 {
		delete(x.pids, id)
		return
	}
	x.pids[id] = pid
}

func (x *sandboxIndex) pid(id string) (int, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.pids[id]
	return p, ok
}

// netMode is a container's network mode, classified.
type netMode struct {
	kind string // "bridge" (the default or a user network), "host", "none", "container"
	name string // network name, or the container reference of container:NAME
}

func modeOf(m *meta) netMode {
	nm := container.NetworkMode(m.HostConfig.NetworkMode)
	switch {
	case nm == "" || nm == "default" || nm == "bridge":
		return netMode{kind: "bridge", name: "bridge"}
	case nm.IsHost():
		return netMode{kind: "host"}
	case nm.IsNone():
		return netMode{kind: "none"}
	case nm.IsContainer():
		return netMode{kind: "container", name: nm.ConnectedContainer()}
	}
	return netMode{kind: "bridge", name: string(nm)}
}

// onBridge reports whether the container has its own network namespace
// attached to bridge networks.
func onBridge(m *meta) bool { return modeOf(m).kind == "bridge" }

// netsOf are the container's networks by name, the primary one (its
// network mode) first, then the others by name.
func netsOf(m *meta) []string {
	mode := modeOf(m)
	if mode.kind != "bridge" {
		return nil
	}
	if m.Nets == nil {
		// Metadata written before networks were kept per container.
		return []string{mode.name}
	}
	var names []string
	for n := range m.Nets {
		if n != mode.name {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := m.Nets[mode.name]; ok {
		names = append([]string{mode.name}, names...)
	}
	return names
}

// onNetwork reports whether the container is connected to the network
// named ref (a name or an id), as ps --filter network= matches.
func onNetwork(m *meta, ref string) bool {
	if string(m.HostConfig.NetworkMode) == ref {
		return true
	}
	for name, s := range m.Nets {
		if name == ref || s != nil && s.NetworkID != "" && (s.NetworkID == ref || len(ref) >= 12 && strings.HasPrefix(s.NetworkID, ref)) {
			return true
		}
	}
	return false
}

// planNetworks checks the network options of a create request and fills
// m.Nets: the network of the network mode and every other network the
// request connects to.
func (e *Engine) planNetworks(m *meta, nc *mnetwork.NetworkingConfig) error {
	hc := m.HostConfig
	var eps map[string]*mnetwork.EndpointSettings
	if nc != nil {
		eps = nc.EndpointsConfig
	}
	mode := modeOf(m)
	if es, ok := eps["default"]; ok && mode.kind == "bridge" && mode.name == "bridge" {
		// The CLI keys the default network's settings "default".
		eps = maps.Clone(eps)
		delete(eps, "default")
		if _, dup := eps["bridge"]; !dup {
			eps["bridge"] = es
		}
	}
	if mode.kind != "bridge" {
		var others []string
		for n := range eps {
			if n != string(hc.NetworkMode) {
				others = append(others, n)
			}
		}
		if len(others) > 0 {
			sort.Strings(others)
			return invalid("Container cannot be connected to network endpoints: %s, %s", hc.NetworkMode, strings.Join(others, ", "))
		}
		if len(hc.Links) > 0 && mode.kind != "none" {
			return invalid("conflicting options: %s type networking can't be used with links. This would result in undefined behavior", mode.kind)
		}
		if mode.kind == "container" {
			t, err := e.lookup(mode.name)
			if err != nil {
				// A 404 would make the CLI pull the image.
				return invalid("%s", err.Error())
			}
			hc.NetworkMode = container.NetworkMode("container:" + t.m.ID)
			if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
				return invalid("conflicting options: port publishing and the container type network mode")
			}
			if len(hc.DNS) > 0 || len(hc.ExtraHosts) > 0 || m.Config.Hostname != "" {
				return invalid("conflicting options: dns, extra hosts or hostname and the container type network mode")
			}
		}
		return nil
	}
	if e.cfg.Network == nil {
		if mode.name != "bridge" || len(eps) > 1 {
			return errUnavailable{errors.New("networks are not available on this engine (it runs without a bridge)")}
		}
		m.Nets = map[string]*mnetwork.EndpointSettings{"bridge": {}}
		return nil
	}
	m.Nets = map[string]*mnetwork.EndpointSettings{}
	add := func(ref string, es *mnetwork.EndpointSettings) error {
		n, err := e.cfg.Network.Find(ref)
		if err != nil {
			// Not a 404: the CLI would take it for a missing image and
			// pull.
			return invalid("%s", err.Error())
		}
		if n.Driver != "bridge" {
			return invalid("container cannot be connected to network %s of driver %s", n.Name, n.Driver)
		}
		s := &mnetwork.EndpointSettings{}
		if es != nil {
			s = es.Copy()
		}
		if err := checkEndpointSettings(n, s, m); err != nil {
			return err
		}
		s.NetworkID = n.ID
		// Only configuration is kept; the rest comes from the live
		// attachment.
		s.EndpointID, s.Gateway, s.IPAddress, s.IPPrefixLen = "", netip.Addr{}, netip.Addr{}, 0
		m.Nets[n.Name] = s
		return nil
	}
	primary := eps[mode.name]
	if err := add(mode.name, primary); err != nil {
		return err
	}
	if m.Nets[mode.name] == nil {
		// The mode named the network by id.
		for name := range m.Nets {
			hc.NetworkMode = container.NetworkMode(name)
		}
	}
	for ref, es := range eps {
		if ref == mode.name {
			continue
		}
		if n, err := e.cfg.Network.Find(ref); err == nil {
			if _, dup := m.Nets[n.Name]; dup {
				continue
			}
		}
		if err := add(ref, es); err != nil {
			return err
		}
	}
	if len(hc.Links) > 0 {
		if modeOf(m).name != "bridge" {
			// On user-defined networks, links are names the embedded DNS
			// answers (the endpoint's Links), as in dockerd.
			s := m.Nets[modeOf(m).name]
			s.Links = append(s.Links, hc.Links...)
			hc.Links = nil
		} else {
			for _, l := range hc.Links {
				target, _, err := parseLink(l)
				if err != nil {
					return err
				}
				if _, err := e.lookup(target); err != nil {
					return invalid("could not get container for %s", target)
				}
			}
		}
	}
	return nil
}

// checkEndpointSettings refuses what dockerd refuses of an endpoint.
func checkEndpointSettings(n network.Network, s *mnetwork.EndpointSettings, m *meta) error {
	if s.IPAMConfig != nil && s.IPAMConfig.IPv4Address.IsValid() {
		ip := s.IPAMConfig.IPv4Address
		if !n.UserDefined() {
			return invalid("user specified IP address is supported on user defined networks only")
		}
		if !n.SubnetChosen {
			return invalid("user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		if !n.Subnet.Contains(ip.Unmap()) {
			return invalid("no configured subnet or ip-range contain the IP address %s", ip)
		}
	}
	if len(s.Aliases) > 0 && !n.UserDefined() {
		return invalid("network-scoped alias is supported only for containers in user defined networks")
	}
	return nil
}

// parseLink splits a --link value "name[:alias]" (the API also sends
// "/name:/ctr/alias").
func parseLink(l string) (target, alias string, err error) {
	target, alias, _ = strings.Cut(l, ":")
	target = strings.TrimPrefix(target, "/")
	if i := strings.LastIndex(alias, "/"); i >= 0 {
		alias = alias[i+1:]
	}
	if alias == "" {
		alias = target
	}
	if target == "" || strings.Contains(target, "/") {
		return "", "", invalid("invalid link %q: a container name is required", l)
	}
	return target, alias, nil
}

// publishedPorts lists the ports to publish: -p bindings, and with -P
// every exposed port on an ephemeral host port.
func publishedPorts(m *meta) ([]network.PortBinding, error) {
	var out []network.PortBinding
	seen := map[mnetwork.Port]bool{}
	add := func(p mnetwork.Port, bs []mnetwork.PortBinding) error {
		proto := string(p.Proto())
		if proto != "tcp" && proto != "udp" {
			return invalid("publishing %s ports is not supported", proto)
		}
		for _, b := range bs {
			first, n, err := network.ParseHostPort(b.HostPort)
			if err != nil {
				return invalid("%s", err.Error())
			}
			pb := network.PortBinding{Proto: proto, HostPort: first, ContainerPort: p.Num()}
			if n > 1 {
				pb.HostPortEnd = first + uint16(n-1)
			}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				if !b.HostIP.Is4() && !b.HostIP.Is4In6() {
					// The bridge is IPv4 only.
					continue
				}
				pb.HostIP = b.HostIP.Unmap()
			} else if b.HostIP.IsValid() && b.HostIP.Is6() {
				// "::" duplicates "0.0.0.0" on an IPv4-only bridge.
				continue
			}
			out = append(out, pb)
		}
		return nil
	}
	keys := make([]mnetwork.Port, 0, len(m.HostConfig.PortBindings))
	for p := range m.HostConfig.PortBindings {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, p := range keys {
		seen[p] = true
		bs := m.HostConfig.PortBindings[p]
		if len(bs) == 0 {
			bs = []mnetwork.PortBinding{{}}
		}
		if err := add(p, bs); err != nil {
			return nil, err
		}
	}
	if m.HostConfig.PublishAllPorts && m.Config != nil {
		exp := make([]mnetwork.Port, 0, len(m.Config.ExposedPorts))
		for p := range m.Config.ExposedPorts {
			if !seen[p] {
				exp = append(exp, p)
			}
		}
		sort.Slice(exp, func(i, j int) bool { return exp[i].String() < exp[j].String() })
		for _, p := range exp {
			if err := add(p, []mnetwork.PortBinding{{}}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// attachNetwork connects a started container's namespace to its
// networks: eth0 on the primary one, eth1... on the others; the first
// network that is not internal carries the default route and the
// published ports. Then /etc/hosts gets the container's addresses and
// links, and a container on a user-defined network gets the embedded DNS
// server. Called with c.mu held; on error nothing is left attached.
func (e *Engine) attachNetwork(c *ctr, pid int) (retErr error) {
	if !onBridge(&c.m) || e.cfg.Network == nil {
		// Without a bridge (dockerd's --bridge=none) the container keeps
		// its own namespace with only loopback.
		return nil
	}
	ports, err := publishedPorts(&c.m)
	if err != nil {
		return err
	}
	c.m.Endpoints = map[string]*network.Endpoint{}
	defer func() {
		if retErr != nil {
			e.detachNetworkLocked(c)
		}
	}()
	routed := false
	for i, name := range netsOf(&c.m) {
		n, err := e.cfg.Network.Find(name)
		if err != nil {
			return fmt.Errorf("failed to set up container networking: %w", err)
		}
		s := c.m.Nets[name]
		if s == nil {
			s = &mnetwork.EndpointSettings{}
		}
		o := attachOptions(s, "eth"+strconv.Itoa(i))
		if !routed && !n.Internal {
			o.DefaultRoute, o.Ports, routed = true, ports, true
		}
		ep, err := e.cfg.Network.Attach(n.ID, c.m.ID, pid, o)
		if err != nil {
			return fmt.Errorf("failed to set up container networking: %w", err)
		}
		c.m.Endpoints[name] = ep
		if c.m.Nets != nil && c.m.Nets[name] != nil {
			c.m.Nets[name].NetworkID = n.ID
		}
		e.dns.add(n, c, ep)
	}
	if err := e.writeHostsLocked(c); err != nil {
		return err
	}
	if e.usesEmbeddedDNS(&c.m) && e.cfg.StartDNS != nil {
		srv, err := e.cfg.StartDNS(fmt.Sprintf("/proc/%d/ns/net", pid), e.dns.namesFor(c.m.ID), upstreamsOf(&c.m))
		if err != nil {
			return fmt.Errorf("failed to start the embedded DNS server: %w", err)
		}
		c.dnsSrv = srv
	}
	return nil
}

// attachOptions are the options of the interface ifName for an endpoint's
// settings: its fixed MAC and IPv4 address when it asks for them.
func attachOptions(s *mnetwork.EndpointSettings, ifName string) network.AttachOptions {
	o := network.AttachOptions{IfName: ifName}
	if len(s.MacAddress) > 0 {
		o.MAC = s.MacAddress.String()
	}
	if s.IPAMConfig != nil && s.IPAMConfig.IPv4Address.IsValid() {
		o.IP = s.IPAMConfig.IPv4Address.Unmap()
	}
	return o
}

// detachNetwork releases the container's attachments. It takes c.mu.
func (e *Engine) detachNetwork(c *ctr) {
	c.mu.Lock()
	e.detachNetworkLocked(c)
	c.mu.Unlock()
}

func (e *Engine) detachNetworkLocked(c *ctr) {
	if c.dnsSrv != nil {
		if err := c.dnsSrv.Close(); err != nil {
			e.log.Warn("stopping the embedded DNS server", "container", c.m.ID, "err", err)
		}
		c.dnsSrv = nil
	}
	e.dns.removeContainer(c.m.ID)
	if e.cfg.Network != nil {
		for _, ep := range c.m.Endpoints {
			e.cfg.Network.Detach(ep.NetworkID, c.m.ID)
		}
	}
	c.m.Endpoints = nil
}

// usesEmbeddedDNS reports whether the container is on a user-defined
// network, whose names the embedded DNS server answers.
func (e *Engine) usesEmbeddedDNS(m *meta) bool {
	if e.cfg.Network == nil || !onBridge(m) {
		return false
	}
	for _, name := range netsOf(m) {
		if n, err := e.cfg.Network.Find(name); err == nil && n.UserDefined() {
			return true
		}
	}
	return false
}

// writeHostsLocked rewrites the container's /etc/hosts (in place: the file
// is bind-mounted) with its addresses and links.
func (e *Engine) writeHostsLocked(c *ctr) error {
	b, err := e.hostsFile(&c.m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.m.HostsPath, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write hosts file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write hosts file: %w", err)
	}
	return f.Close()
}

// networks reports the container's network endpoints, keyed by network.
func (e *Engine) networks(m *meta) map[string]*mnetwork.EndpointSettings {
	out := map[string]*mnetwork.EndpointSettings{}
	mode := modeOf(m)
	switch mode.kind {
	case "host", "none":
		out[mode.kind] = &mnetwork.EndpointSettings{}
		if e.cfg.Network != nil {
			if n, err := e.cfg.Network.Find(mode.kind); err == nil {
				out[mode.kind].NetworkID = n.ID
			}
		}
		return out
	case "container":
		return out
	}
	for _, name := range netsOf(m) {
		es := &mnetwork.EndpointSettings{}
		if s := m.Nets[name]; s != nil {
			es = s.Copy()
		}
		if ep := m.Endpoints[name]; ep != nil {
			es.NetworkID = ep.NetworkID
			es.EndpointID = ep.ID
			es.Gateway = ep.Gateway
			es.IPAddress = ep.IP
			es.IPPrefixLen = ep.PrefixLen
			if hw, err := net.ParseMAC(ep.MAC); err == nil {
				es.MacAddress = mnetwork.HardwareAddr(hw)
			}
		}
		if e.cfg.Network != nil {
			if n, err := e.cfg.Network.Find(name); err == nil && n.UserDefined() {
				es.DNSNames = dnsNamesOf(m, es)
			}
		}
		out[name] = es
	}
	return out
}

// dnsNamesOf are the names the embedded DNS server answers for a
// container on one network: its name, its aliases and its short id.
func dnsNamesOf(m *meta, es *mnetwork.EndpointSettings) []string {
	names := []string{strings.TrimPrefix(m.Name, "/")}
	names = append(names, es.Aliases...)
	return append(names, m.ID[:12])
}

// primaryEndpoint is the attachment carrying the published ports.
func primaryEndpoint(m *meta) *network.Endpoint {
	for _, name := range netsOf(m) {
		if ep := m.Endpoints[name]; ep != nil && len(ep.Ports) > 0 {
			return ep
		}
	}
	for _, name := range netsOf(m) {
		if ep := m.Endpoints[name]; ep != nil {
			return ep
		}
	}
	return nil
}

// portMap is NetworkSettings.Ports: every exposed port, with its host
// bindings while the container runs.
func portMap(m *meta) mnetwork.PortMap {
	pm := mnetwork.PortMap{}
	ep := primaryEndpoint(m)
	if ep == nil {
		return pm
	}
	if m.Config != nil {
		for p := range m.Config.ExposedPorts {
			pm[p] = nil
		}
	}
	for _, b := range ep.Ports {
		p, ok := mnetwork.PortFrom(b.ContainerPort, mnetwork.IPProtocol(b.Proto))
		if !ok {
			continue
		}
		ip := b.HostIP
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		pm[p] = append(pm[p], mnetwork.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(b.HostPort))})
	}
	return pm
}

// portSummaries is the Ports column of docker ps.
func portSummaries(m *meta) []container.PortSummary {
	out := []container.PortSummary{}
	published := map[mnetwork.Port]bool{}
	if ep := primaryEndpoint(m); ep != nil {
		for _, b := range ep.Ports {
			ip := b.HostIP
			if !ip.IsValid() {
				ip = netip.IPv4Unspecified()
			}
			out = append(out, container.PortSummary{IP: ip, PrivatePort: b.ContainerPort, PublicPort: b.HostPort, Type: b.Proto})
			if p, ok := mnetwork.PortFrom(b.ContainerPort, mnetwork.IPProtocol(b.Proto)); ok {
				published[p] = true
			}
		}
	}
	if m.Config != nil {
		for p := range m.Config.ExposedPorts {
			if !published[p] {
				out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PrivatePort != out[j].PrivatePort {
			return out[i].PrivatePort < out[j].PrivatePort
		}
		return out[i].Type < out[j].Type
	})
	return out
}
