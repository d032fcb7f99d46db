package pid1

import (
	"context"
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dhcpClient gets a DHCPv4 lease for one interface, applies it (address
// and prefix, default route, MTU, resolv.conf) and keeps it for the life of
// the VM: it renews with the lease's server at T1, rebinds with any server
// from T2, and when the lease ends anyway it takes the address away and
// starts over.
//
// It works in the network namespace of the thread that calls run, and
// keeps to that goroutine: every socket it opens, it opens there.
type dhcpClient struct {
	iface      string
	resolvConf string // the file the lease's name servers and search domains go to
	hostname   string // sent in the host name option; "" sends none
	log        *slog.Logger
	// wait bounds the first lease: past it, run reports the failure (and,
	// with fallback, configures the static addresses instead).
	wait time.Duration
	// retransmit is the wait for an answer to a message; it doubles with
	// each of the sends of one exchange.
	retransmit time.Duration
	sends      int
	// minRetry is the least wait between renewal attempts (RFC 2131 4.4.5
	// says 60 s); less when the time left is less.
	minRetry time.Duration

	link   netlink.Link
	hwaddr net.HardwareAddr
}

// The client's defaults in the VM.
const (
	dhcpWait       = 10 * time.Second
	dhcpRetransmit = time.Second
	dhcpSends      = 3 // 1 + 2 + 4 s for one exchange
	dhcpMinRetry   = 60 * time.Second
)

// boundLease is a lease as applied: the ACK it came in (renewals are made
// from it) and when its request went out (its times count from then).
type boundLease struct {
	Lease
	ack   *dhcpv4.DHCPv4
	start time.Time
}

func (b *boundLease) end() time.Time { return b.start.Add(b.Time) }

// errNoLease is the reason run gives its ready callback when no lease came
// within the wait.
var errNoLease = errors.New("no DHCP lease")

// run brings the interface up and gets the first lease, then calls ready
// once: with nil when the lease was applied, or with the error when none
// came within the wait. Without fallback it goes on asking; with it, it
// configures QEMU's static addresses and returns. With a lease it keeps it
// until ctx ends.
func (c *dhcpClient) run(ctx context.Context, fallback bool, ready func(error)) {
	if err := c.prepare(); err != nil {
		ready(err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, c.wait)
	b, err := c.acquire(wctx)
	cancel()
	if err == nil {
		err = c.apply(nil, b)
		if err != nil {
			err = fmt.Errorf("apply the lease of %s: %w", c.iface, err)
		}
	} else {
		err = fmt.Errorf("%w on %s within %v: %w", errNoLease, c.iface, c.wait, err)
	}
	if err != nil && fallback {
		if serr := configureStatic(c.link, c.resolvConf); serr != nil {
			ready(fmt.Errorf("%w; static fallback: %w", err, serr))
			return
		}
		c.log.Error("berth: network: DHCP failed; static user-network addresses instead", "iface", c.iface, "addr", guestCIDR, "err", err)
		ready(nil)
		return
	}
	if err != nil {
		c.log.Error("berth: network: DHCP failed; still asking", "iface", c.iface, "err", err)
		b = nil
	} else {
		c.logLease(b)
	}
	ready(err)
	c.keep(ctx, b)
}

func (c *dhcpClient) logLease(b *boundLease) {
	c.log.Info("berth: network: DHCP lease", "iface", c.iface, "addr", b.Addr, "router", b.Router, "dns", b.DNS, "time", b.Time, "forever", b.Forever)
}

// prepare finds the interface and brings it up: DHCP needs a link that
// sends.
func (c *dhcpClient) prepare() error {
	link, err := netlink.LinkByName(c.iface)
	if err != nil {
		return fmt.Errorf("find %s: %w", c.iface, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", c.iface, err)
	}
	c.link = link
	c.hwaddr = link.Attrs().HardwareAddr
	if len(c.hwaddr) != 6 {
		return fmt.Errorf("%s has no Ethernet address (%v)", c.iface, c.hwaddr)
	}
	return nil
}

// keep holds b (nil: none yet) until ctx ends: renew, rebind, and start
// over when it ends.
func (c *dhcpClient) keep(ctx context.Context, b *boundLease) {
	for ctx.Err() == nil {
		if b == nil {
			nb, err := c.acquire(ctx)
			if err != nil {
				return // ctx ended
			}
			if err := c.apply(nil, nb); err != nil {
				c.log.Error("berth: network: apply lease", "iface", c.iface, "err", err)
				sleepCtx(ctx, c.retransmit)
				continue
			}
			c.logLease(nb)
			b = nb
		}
		if b.Forever {
			<-ctx.Done()
			return
		}
		nb := c.hold(ctx, b)
		if ctx.Err() != nil {
			return
		}
		if nb == nil {
			c.drop(b)
			b = nil
			continue
		}
		if err := c.apply(b, nb); err != nil {
			c.log.Error("berth: network: apply renewed lease", "iface", c.iface, "err", err)
		}
		b = nb
	}
}

// hold renews b with its server from T1 and rebinds with any server from
// T2, each retried after half the time left to the next stage (at least
// minRetry). It returns the lease as extended, or nil when b ended or a
// server refused it.
func (c *dhcpClient) hold(ctx context.Context, b *boundLease) *boundLease {
	t1, t2, end := b.start.Add(b.T1), b.start.Add(b.T2), b.end()
	if !sleepUntil(ctx, t1) {
		return nil
	}
	for {
		now := time.Now()
		if !now.Before(end) {
			c.log.Warn("berth: network: DHCP lease ended without renewal", "iface", c.iface, "addr", b.Addr)
			return nil
		}
		rebind, stageEnd := false, t2
		if !now.Before(t2) {
			rebind, stageEnd = true, end
		}
		actx, cancel := context.WithDeadline(ctx, stageEnd)
		nb, err := c.extend(actx, b, rebind)
		cancel()
		if err == nil {
			c.log.Debug("berth: network: DHCP lease extended", "iface", c.iface, "addr", nb.Addr, "rebind", rebind, "time", nb.Time)
			return nb
		}
		if ctx.Err() != nil {
			return nil
		}
		var nak *nclient4.ErrNak
		if errors.As(err, &nak) {
			c.log.Warn("berth: network: DHCP server refused the lease", "iface", c.iface, "addr", b.Addr, "rebind", rebind, "msg", nak.Nak.Message())
			return nil
		}
		c.log.Debug("berth: network: DHCP renewal", "iface", c.iface, "rebind", rebind, "err", err)
		left := time.Until(stageEnd)
		if !sleepCtx(ctx, max(left/2, min(c.minRetry, left))) {
			return nil
		}
	}
}

// requestModifiers are what every request of the client carries: the
// options it asks for and its host name.
func (c *dhcpClient) requestModifiers() []dhcpv4.Modifier {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(
			dhcpv4.OptionSubnetMask,
			dhcpv4.OptionRouter,
			dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName,
			dhcpv4.OptionDNSDomainSearchList,
			dhcpv4.OptionInterfaceMTU,
			dhcpv4.OptionIPAddressLeaseTime,
			dhcpv4.OptionRenewTimeValue,
			dhcpv4.OptionRebindingTimeValue,
		),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
	}
	if c.hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(c.hostname)))
	}
	return mods
}

// acquire runs DISCOVER, OFFER, REQUEST, ACK over a raw socket (the
// interface has no address yet) until a usable lease comes or ctx ends.
func (c *dhcpClient) acquire(ctx context.Context) (*boundLease, error) {
	conn, err := nclient4.NewRawUDPConn(c.iface, nclient4.ClientPort)
	if err != nil {
		return nil, fmt.Errorf("open a packet socket on %s: %w", c.iface, err)
	}
	// The raw socket sees every IPv4 packet of the interface: it lives only
	// while there is no lease.
	cl, err := nclient4.NewWithConn(conn, c.hwaddr, nclient4.WithTimeout(c.retransmit), nclient4.WithRetry(c.sends))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("DHCP client on %s: %w", c.iface, err)
	}
	defer cl.Close()
	var last error = errors.New("no DHCPOFFER yet")
	for {
		start := time.Now()
		offer, err := cl.DiscoverOffer(ctx, c.requestModifiers()...)
		if err != nil {
			last = fmt.Errorf("no DHCPOFFER: %w", err)
			if ctx.Err() != nil {
				return nil, last
			}
			continue
		}
		ack, err := cl.RequestFromOffer(ctx, offer, c.requestModifiers()...)
		if err == nil {
			l, perr := leaseFromACK(ack.ACK)
			if perr == nil {
				return &boundLease{Lease: l, ack: ack.ACK, start: start}, nil
			}
			err = fmt.Errorf("unusable DHCPACK from %v: %w", offer.ServerIdentifier(), perr)
		}
		var nak *nclient4.ErrNak
		refused := errors.As(err, &nak) || errors.Is(err, ErrBadLease)
		if !refused {
			err = fmt.Errorf("no DHCPACK for %v offered by %v: %w", offer.YourIPAddr, offer.ServerIdentifier(), err)
		}
		last = err
		c.log.Debug("berth: network: DHCP", "iface", c.iface, "err", err)
		if ctx.Err() != nil {
			return nil, last
		}
		// A refusal starts over after a pause; a timeout at once.
		if refused && !sleepCtx(ctx, c.retransmit) {
			return nil, last
		}
	}
}

// extend asks for b once more: REQUEST with b's address, to b's server
// (renewing) or to everyone (rebinding), over a UDP socket of the
// interface, which by now has the address.
func (c *dhcpClient) extend(ctx context.Context, b *boundLease, rebind bool) (*boundLease, error) {
	to := &net.UDPAddr{IP: net.IPv4bcast, Port: nclient4.ServerPort}
	if !rebind && b.Server.IsValid() {
		to.IP = b.Server.AsSlice()
	}
	conn, err := clientUDPConn(c.iface)
	if err != nil {
		return nil, err
	}
	cl, err := nclient4.NewWithConn(conn, c.hwaddr, nclient4.WithTimeout(c.retransmit), nclient4.WithRetry(c.sends), nclient4.WithServerAddr(to))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("DHCP client on %s: %w", c.iface, err)
	}
	defer cl.Close()
	req, err := dhcpv4.NewRenewFromAck(b.ack, c.requestModifiers()...)
	if err != nil {
		return nil, fmt.Errorf("make DHCPREQUEST: %w", err)
	}
	if req.TransactionID, err = dhcpv4.GenerateTransactionID(); err != nil {
		return nil, fmt.Errorf("make DHCPREQUEST: %w", err)
	}
	start := time.Now()
	resp, err := cl.SendAndRead(ctx, to, req, nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if err != nil {
		return nil, fmt.Errorf("DHCPREQUEST to %v: %w", to.IP, err)
	}
	if resp.MessageType() == dhcpv4.MessageTypeNak {
		return nil, &nclient4.ErrNak{Offer: b.ack, Nak: resp}
	}
	l, err := leaseFromACK(resp)
	if err != nil {
		return nil, err
	}
	return &boundLease{Lease: l, ack: resp, start: start}, nil
}

// clientUDPConn is a UDP socket on the client port, bound to the interface,
// that may broadcast.
func clientUDPConn(iface string) (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("UDP socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "dhcp-client")
	defer f.Close() // FilePacketConn dups it
	for _, o := range []int{unix.SO_BROADCAST, unix.SO_REUSEADDR} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			return nil, fmt.Errorf("UDP socket option %d: %w", o, err)
		}
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		return nil, fmt.Errorf("bind UDP socket to %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: nclient4.ClientPort}); err != nil {
		return nil, fmt.Errorf("bind UDP port %d: %w", nclient4.ClientPort, err)
	}
	conn, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("UDP socket on %s: %w", iface, err)
	}
	return conn, nil
}

// apply puts b on the interface in place of old (nil: none): MTU, address
// (with the lease's lifetime, so the kernel drops it should pid1 not), the
// default route and resolv.conf.
func (c *dhcpClient) apply(old, b *boundLease) error {
	if b.MTU > 0 && c.link.Attrs().MTU != b.MTU {
		if err := netlink.LinkSetMTU(c.link, b.MTU); err != nil {
			return fmt.Errorf("set MTU of %s to %d: %w", c.iface, b.MTU, err)
		}
	}
	if old != nil && old.Addr != b.Addr {
		c.drop(old)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(b.Addr)}
	if !b.Forever {
		left := int(math.Ceil(time.Until(b.end()).Seconds()))
		if left < 1 {
			left = 1
		}
		addr.ValidLft, addr.PreferedLft = left, left
	}
	if err := netlink.AddrReplace(c.link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", b.Addr, c.iface, err)
	}
	if b.Router.IsValid() {
		route := &netlink.Route{LinkIndex: c.link.Attrs().Index, Gw: b.Router.AsSlice()}
		if !b.Addr.Contains(b.Router) {
			route.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s: %w", b.Router, err)
		}
	} else if old != nil && old.Router.IsValid() {
		_ = netlink.RouteDel(&netlink.Route{LinkIndex: c.link.Attrs().Index, Gw: old.Router.AsSlice()})
	}
	if old == nil || string(old.ResolvConf(c.iface)) != string(b.ResolvConf(c.iface)) {
		if err := atomicfile.Write(c.resolvConf, b.ResolvConf(c.iface), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// drop takes the address of b off the interface (its routes go with it);
// the kernel may have done so already at the end of its lifetime.
func (c *dhcpClient) drop(b *boundLease) {
	err := netlink.AddrDel(c.link, &netlink.Addr{IPNet: prefixIPNet(b.Addr)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) {
		c.log.Warn("berth: network: remove address", "iface", c.iface, "addr", b.Addr, "err", err)
	}
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still on.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleepCtx(ctx, time.Until(t))
}
