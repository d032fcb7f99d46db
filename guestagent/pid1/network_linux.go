package pid1

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/vishvananda/netlink"
)

// Static addressing of QEMU's user network.
const (
	guestCIDR  = "10.0.2.15/24"
	gatewayIP  = "10.0.2.2"
	nameserver = "10.0.2.3"
)

// setupNetwork brings up lo and eth0 with the user network's static
// address, the default route and resolv.conf.
func setupNetwork(log *slog.Logger) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	var eth netlink.Link
	deadline := time.Now().Add(3 * time.Second)
	for {
		eth, err = netlink.LinkByName("eth0")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("find eth0: %w", err)
	}
	addr, err := netlink.ParseAddr(guestCIDR)
	if err != nil {
		return fmt.Errorf("parse %s: %w", guestCIDR, err)
	}
	if err := netlink.AddrReplace(eth, addr); err != nil {
		return fmt.Errorf("address eth0: %w", err)
	}
	if err := netlink.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring up eth0: %w", err)
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(gatewayIP)}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gatewayIP, err)
	}
	if err := os.WriteFile("/etc/resolv.conf", []byte("nameserver "+nameserver+"\n"), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	log.Debug("berth: network up", "addr", guestCIDR)
	return nil
}
