package pid1

import (
	"context"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"log/slog"
	"net"
	"time"

	"github.com/vishvananda/netlink"
)

// Static addressing of QEMU's user network (berth.net=static, and
// berth.net=auto without a lease).
const (
	guestCIDR  = "10.0.2.15/24"
	gatewayIP  = "10.0.2.2"
	nameserver = "10.0.2.3"
)

// The guest's interface and resolver file.
const (
	netIface   = "eth0"
	resolvConf = "/etc/resolv.conf"
)

// setupNetwork brings up lo and eth0 the way mode (berth.net) says, once
// eth0 exists: it may start before the device's driver has loaded, and
// gives up a second after devicesLoaded closes without one. With DHCP it
// returns once the first lease is applied or the wait for it is over; the
// lease is kept by a goroutine for the life of the VM.
func setupNetwork(log *slog.Logger, mode string, devicesLoaded <-chan struct{}) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	var eth netlink.Link
	var deadline time.Time
	for {
		eth, err = netlink.LinkByName(netIface)
		if err == nil {
			break
		}
		if deadline.IsZero() {
			select {
			case <-devicesLoaded:
				deadline = time.Now().Add(time.Second)
			default:
			}
		} else if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", netIface, err)
	}
	if mode == NetStatic {
		if err := configureStatic(eth, resolvConf); err != nil {
			return err
		}
		log.Debug("berth: network up", "addr", guestCIDR)
		return nil
	}
	c := &dhcpClient{
		iface:      netIface,
		resolvConf: resolvConf,
		hostname:   "berth",
		log:        log,
		wait:       dhcpWait,
		retransmit: dhcpRetransmit,
		sends:      dhcpSends,
		minRetry:   dhcpMinRetry,
	}
	ready := make(chan error, 1)
	go c.run(context.Background(), mode == NetAuto, func(err error) { ready <- err })
	return <-ready
}

// configureStatic gives link QEMU user network's static address, the
// default route through its gateway and its resolver.
func configureStatic(link netlink.Link, resolvPath string) error {
	name := link.Attrs().Name
	addr, err := netlink.ParseAddr(guestCIDR)
	if err != nil {
		return fmt.Errorf("parse %s: %w", guestCIDR, err)
	}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(gatewayIP)}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gatewayIP, err)
	}
	if err := atomicfile.Write(resolvPath, []byte("nameserver "+nameserver+"\n"), 0o644); err != nil {
		return err
	}
	return nil
}
