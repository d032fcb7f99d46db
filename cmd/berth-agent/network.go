//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"

	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/network/dns"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

// openBridge sets up the default bridge from the flags and daemon.json.
func openBridge(f *engineFlags, c *daemonConfig, log *slog.Logger) (*network.Bridge, error) {
	name, bip, mtu := f.bridge, f.bip, 0
	if c != nil {
		if name == "" {
			name = c.Bridge
		}
		if bip == "" {
			bip = c.Bip
		}
		mtu = c.MTU
	}
	cfg := network.Config{Bridge: name, MTU: mtu, Logger: log, NetworkID: bridgeNetworkID(name)}
	if bip != "" {
		p, err := parseBip(bip)
		if err != nil {
			return nil, fmt.Errorf("bip: %w", err)
		}
		cfg.Gateway = p
	}
	return network.NewBridge(cfg)
}

// openNetworks sets up the engine's networks: the default bridge (when it
// cannot be had, bridge containers cannot start and the reason is
// logged) and the user-defined networks kept under the data root.
func openNetworks(f *engineFlags, c *daemonConfig, dataRoot string, log *slog.Logger) (*network.Manager, error) {
	bridge, err := openBridge(f, c, log)
	if err != nil {
		log.Error("the default bridge network is unavailable", "err", err)
		bridge = nil
	}
	name := f.bridge
	if c != nil && name == "" {
		name = c.Bridge
	}
	if name == "" {
		name = "berth0"
	}
	mc := network.ManagerConfig{Root: filepath.Join(dataRoot, "network"), Default: bridge, DefaultName: name, Logger: log}
	if c != nil {
		mc.Pools, mc.MTU = c.DefaultAddressPools, c.MTU
	}
	m, err := network.OpenManager(mc)
	if err != nil {
		if bridge != nil {
			bridge.Close()
		}
		return nil, err
	}
	return m, nil
}

// hostGateway is what host-gateway and host.docker.internal resolve to:
// --host-gateway-ip, daemon.json's host-gateway-ip, else the default
// bridge's address (dockerd's default).
func hostGateway(f *engineFlags, c *daemonConfig, m *network.Manager) netip.Addr {
	if f.hostGatewayIP.IsValid() {
		return f.hostGatewayIP
	}
	if c != nil && c.HostGatewayIP.IsValid() {
		return c.HostGatewayIP
	}
	if m != nil {
		if n, err := m.Find("bridge"); err == nil {
			return n.Gateway
		}
	}
	return netip.Addr{}
}

// startDNS starts a container's embedded DNS server.
func startDNS(log *slog.Logger) ctrengine.DNSStarter {
	return func(nsPath string, names ctrengine.DNSNames, upstreams []netip.AddrPort) (io.Closer, error) {
		return dns.Listen(nsPath, netip.MustParseAddrPort("127.0.0.11:53"), dns.Config{Names: names, Upstreams: upstreams, Logger: log})
	}
}

// bridgeNetworkID is a stable id for the default bridge network.
func bridgeNetworkID(name string) string {
	if name == "" {
		name = "berth0"
	}
	sum := sha256.Sum256([]byte("berth bridge " + name))
	return hex.EncodeToString(sum[:])
}

// parseBip parses dockerd's bip (settings/daemonjson owns the rule).
func parseBip(s string) (netip.Prefix, error) { return daemonjson.ParseBip(s) }

// networker keeps a nil manager a nil interface.
func networker(m *network.Manager) ctrengine.Networker {
	if m == nil {
		return nil
	}
	return m
}
