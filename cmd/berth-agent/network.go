//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"

	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/network/dns"
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

// parseBip parses dockerd's bip: the bridge's own address with the
// network's prefix length, e.g. 172.17.0.1/16.
func parseBip(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address with a prefix length (like 172.17.0.1/16)", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q: only IPv4 is supported", s)
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%q: the prefix length must be between 8 and 30", s)
	}
	if p.Addr() == p.Masked().Addr() {
		return netip.Prefix{}, fmt.Errorf("%q: the bridge needs a host address, not the network address", s)
	}
	return p, nil
}

func decodeBip(c *daemonConfig, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.Bip, "a string"); err != nil {
		return err
	}
	if _, err := parseBip(c.Bip); err != nil {
		return fmt.Errorf("invalid value for %q: %w", key, err)
	}
	return nil
}

func decodeMTU(c *daemonConfig, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.MTU, "an integer"); err != nil {
		return err
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return fmt.Errorf("invalid value for %q: %d is not between 68 and 65535", key, c.MTU)
	}
	return nil
}

// decodePools reads default-address-pools: [{"base": "10.10.0.0/16",
// "size": 24}, ...].
func decodePools(c *daemonConfig, key string, raw json.RawMessage) error {
	var ps []struct {
		Base string `json:"base"`
		Size int    `json:"size"`
	}
	if err := decodeAs(key, raw, &ps, `an array of {"base": "CIDR", "size": N}`); err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("invalid value for %q: at least one pool is required", key)
	}
	c.DefaultAddressPools = nil
	for i, p := range ps {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil {
			return fmt.Errorf("invalid value for %q: pool %d: base %q is not a CIDR prefix", key, i, p.Base)
		}
		pool := network.Pool{Base: base.Masked(), Size: p.Size}
		if err := network.ValidatePool(pool); err != nil {
			return fmt.Errorf("invalid value for %q: pool %d: %w", key, i, err)
		}
		c.DefaultAddressPools = append(c.DefaultAddressPools, pool)
	}
	return nil
}

// networker keeps a nil manager a nil interface.
func networker(m *network.Manager) ctrengine.Networker {
	if m == nil {
		return nil
	}
	return m
}
