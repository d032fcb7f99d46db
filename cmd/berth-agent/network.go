//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"

	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/network"
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

// networker keeps a nil bridge a nil interface.
func networker(b *network.Bridge) ctrengine.Networker {
	if b == nil {
		return nil
	}
	return b
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
