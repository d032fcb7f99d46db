//go:build linux

package engine

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	"github.com/moby/moby/api/types/container"
	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berthdesktop/berth/guestagent/network"
)

// Networker attaches containers on the default bridge (network.Bridge).
type Networker interface {
	// Attach connects the network namespace of pid as container id and
	// publishes ports; on error nothing is left behind.
	Attach(id string, pid int, mac string, ports []network.PortBinding) (*network.Endpoint, error)
	// Detach undoes Attach; unknown ids are ignored.
	Detach(id string)
}

// onBridge reports whether the container joins the default bridge.
func onBridge(m *meta) bool {
	nm := string(m.HostConfig.NetworkMode)
	return nm == "bridge" || nm == "" || nm == "default"
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

// attachNetwork connects a started container's namespace to the bridge.
func (e *Engine) attachNetwork(c *ctr, pid int) error {
	if !onBridge(&c.m) {
		return nil
	}
	if e.cfg.Network == nil {
		// As dockerd with --bridge=none: the container keeps its own
		// network namespace with only loopback.
		return nil
	}
	ports, err := publishedPorts(&c.m)
	if err != nil {
		return err
	}
	ep, err := e.cfg.Network.Attach(c.m.ID, pid, "", ports)
	if err != nil {
		return fmt.Errorf("failed to set up container networking: %w", err)
	}
	c.m.Endpoint = ep
	return nil
}

// detachNetwork releases the container's bridge attachment.
func (e *Engine) detachNetwork(id string) {
	if e.cfg.Network != nil {
		e.cfg.Network.Detach(id)
	}
}

// networks reports the container's network endpoints, keyed by network.
func networks(m *meta) map[string]*mnetwork.EndpointSettings {
	name := string(m.HostConfig.NetworkMode)
	if onBridge(m) {
		name = "bridge"
	}
	es := &mnetwork.EndpointSettings{}
	if ep := m.Endpoint; ep != nil {
		es.NetworkID = ep.NetworkID
		es.EndpointID = ep.ID
		es.Gateway = ep.Gateway
		es.IPAddress = ep.IP
		es.IPPrefixLen = ep.PrefixLen
		if hw, err := net.ParseMAC(ep.MAC); err == nil {
			es.MacAddress = mnetwork.HardwareAddr(hw)
		}
	}
	return map[string]*mnetwork.EndpointSettings{name: es}
}

// portMap is NetworkSettings.Ports: every exposed port, with its host
// bindings while the container runs.
func portMap(m *meta) mnetwork.PortMap {
	pm := mnetwork.PortMap{}
	if m.Endpoint == nil {
		return pm
	}
	if m.Config != nil {
		for p := range m.Config.ExposedPorts {
			pm[p] = nil
		}
	}
	for _, b := range m.Endpoint.Ports {
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
	if m.Endpoint != nil {
		for _, b := range m.Endpoint.Ports {
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
