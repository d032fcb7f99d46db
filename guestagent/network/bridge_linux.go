//go:build linux

package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Config configures one bridge network: the default bridge or a
// user-defined one.
type Config struct {
	// Name is the network's name ("bridge" for the default one).
	Name string
	// Bridge is the Linux bridge's name ("berth0").
	Bridge string
	// Gateway is the bridge's address with the network's prefix length
	// (172.17.0.1/16 unless daemon.json's bip says otherwise).
	Gateway netip.Prefix
	// MTU of the bridge and the veths; 0 means 1500.
	MTU int
	// NetworkID is the id "docker network inspect bridge" shows.
	NetworkID string
	// Internal networks have no outbound NAT and no route out: their
	// traffic stays on the bridge.
	Internal bool
	Logger   *slog.Logger
}

// AttachOptions say how a container joins a bridge.
type AttachOptions struct {
	// IfName is the interface's name inside the container ("eth0").
	IfName string
	// MAC overrides the generated MAC address when not empty.
	MAC string
	// IP asks for this address (it must be in the subnet and free);
	// invalid: the next free one.
	IP netip.Addr
	// DefaultRoute makes the gateway the container's default route.
	DefaultRoute bool
	// Ports are published on this attachment.
	Ports []PortBinding
}

// Bridge is one bridge network. Its address pool lives in memory:
// the engine kills what a previous run left behind before it starts any
// container, so no address can be held by a process the pool does not
// know of.
type Bridge struct {
	cfg    Config
	log    *slog.Logger
	subnet netip.Prefix
	nat    *natTable

	mu   sync.Mutex
	used map[netip.Addr]string // address -> container id
	eps  map[string]*attachment
	next netip.Addr   // where the next address search starts
	rng  netip.Prefix // when valid, addresses come from this part
}

type attachment struct {
	ep      *Endpoint
	proxies []*proxy
}

// NewBridge sets up the bridge (creating it when missing), its gateway
// address, IPv4 forwarding and the nftables table, and removes veths a
// previous run of the engine left on the bridge.
func NewBridge(cfg Config) (*Bridge, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "berth0"
	}
	if cfg.Name == "" {
		cfg.Name = "bridge"
	}
	if !cfg.Gateway.IsValid() {
		cfg.Gateway = netip.MustParsePrefix("172.17.0.1/16")
	}
	if !cfg.Gateway.Addr().Is4() || cfg.Gateway.Bits() > 30 || cfg.Gateway.Bits() < 8 {
		return nil, fmt.Errorf("bridge address %s: need an IPv4 address with a prefix between /8 and /30", cfg.Gateway)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bridge{
		cfg:    cfg,
		log:    cfg.Logger,
		subnet: cfg.Gateway.Masked(),
		used:   map[netip.Addr]string{},
		eps:    map[string]*attachment{},
	}
	b.next = b.subnet.Addr().Next()
	if err := b.setupLink(); err != nil {
		return nil, err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	// Connections from this machine's loopback to a published port are
	// DNATed onto the bridge (nat_linux.go): the kernel must route
	// 127.0.0.0/8 sources out of it.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+cfg.Bridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("enable route_localnet on %s: %w", cfg.Bridge, err)
	}
	nat, err := newNATTable(cfg.Bridge, b.subnet, cfg.Internal)
	if err != nil {
		return nil, err
	}
	b.nat = nat
	return b, nil
}

// Subnet is the bridge network's subnet.
func (b *Bridge) Subnet() netip.Prefix { return b.subnet }

// Gateway is the bridge's own address.
func (b *Bridge) Gateway() netip.Addr { return b.cfg.Gateway.Addr() }

// Name is the Linux bridge's name.
func (b *Bridge) Name() string { return b.cfg.Bridge }

// Internal reports whether the network is internal.
func (b *Bridge) Internal() bool { return b.cfg.Internal }

// MTU of the bridge.
func (b *Bridge) MTU() int { return b.cfg.MTU }

func (b *Bridge) setupLink() error {
	name := b.cfg.Bridge
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name = name
		la.MTU = b.cfg.MTU
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
	} else if link.Type() != "bridge" {
		return fmt.Errorf("%s exists and is a %s, not a bridge", name, link.Type())
	}
	// Veths of a previous run: their containers are gone.
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == link.Attrs().Index && l.Type() == "veth" {
			if err := netlink.LinkDel(l); err != nil {
				b.log.Warn("removing stale veth", "veth", l.Attrs().Name, "err", err)
			}
		}
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(b.cfg.Gateway)}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("set address %s on %s: %w", b.cfg.Gateway, name, err)
	}
	// Drop any other IPv4 address (a changed bip).
	if addrs, err := netlink.AddrList(link, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if a.IPNet.String() != addr.IPNet.String() {
				_ = netlink.AddrDel(link, &a)
			}
		}
	}
	if err := netlink.LinkSetMTU(link, b.cfg.MTU); err != nil {
		return fmt.Errorf("set MTU of %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up %s: %w", name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// allocateLocked returns a free address for id: want when it is valid.
func (b *Bridge) allocateLocked(id string, want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		want = want.Unmap()
		if !b.subnet.Contains(want) || want == b.subnet.Addr() || want == lastAddr(b.subnet) || want == b.Gateway() {
			return netip.Addr{}, fmt.Errorf("no configured subnet or ip-range contain the IP address %s", want)
		}
		if owner, taken := b.used[want]; taken && owner != id {
			return netip.Addr{}, fmt.Errorf("Address already in use")
		}
		b.used[want] = id
		return want, nil
	}
	scope := b.subnet
	if b.rng.IsValid() {
		scope = b.rng
	}
	first := scope.Addr()
	if !b.subnet.Contains(b.next) || !scope.Contains(b.next) {
		b.next = first
	}
	a := b.next
	for range 1 << (32 - scope.Bits()) {
		if !scope.Contains(a) {
			a = first
		}
		if _, taken := b.used[a]; !taken && a != b.Gateway() && a != b.subnet.Addr() && a != lastAddr(b.subnet) {
			b.used[a] = id
			b.next = a.Next()
			return a, nil
		}
		a = a.Next()
	}
	return netip.Addr{}, fmt.Errorf("no address left in %s", scope)
}

// limitTo makes addresses come from r, a part of the subnet.
func (b *Bridge) limitTo(r netip.Prefix) {
	b.mu.Lock()
	b.rng = r
	b.mu.Unlock()
}

func lastAddr(p netip.Prefix) netip.Addr {
	return uintAddr(addrUint(p.Masked().Addr()) | (1<<(32-p.Bits()) - 1))
}

// macFor is dockerd's scheme: 02:42 followed by the IPv4 address.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// Attach connects the network namespace of pid to the bridge as container
// id: a veth pair whose inner end becomes o.IfName with an address from
// the pool (and, when asked, a default route through the gateway), then
// the published ports. On error nothing is left behind.
func (b *Bridge) Attach(id string, pid int, o AttachOptions) (ep *Endpoint, err error) {
	if o.IfName == "" {
		o.IfName = "eth0"
	}
	mac, ports := o.MAC, o.Ports
	b.mu.Lock()
	if _, ok := b.eps[id]; ok {
		b.mu.Unlock()
		return nil, fmt.Errorf("container %s is already attached to %s", id, b.cfg.Name)
	}
	ip, err := b.allocateLocked(id, o.IP)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.mu.Unlock()
	defer func() {
		if err != nil {
			b.mu.Lock()
			delete(b.used, ip)
			b.mu.Unlock()
		}
	}()
	if mac == "" {
		mac = macFor(ip)
	}
	hwaddr, err := net.ParseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("invalid MAC address %q: %w", mac, err)
	}
	suffix := randHex(4)
	hostName, peerName := "veth"+suffix, "vbp"+suffix
	br, err := netlink.LinkByName(b.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", b.cfg.Bridge, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = hostName
	la.MTU = b.cfg.MTU
	la.MasterIndex = br.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: la, PeerName: peerName}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s: %w", hostName, err)
	}
	defer func() {
		if err != nil {
			if l, lerr := netlink.LinkByName(hostName); lerr == nil {
				_ = netlink.LinkDel(l)
			}
		}
	}()
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("look up veth %s: %w", hostName, err)
	}
	// A container reaching its own published port through the gateway
	// leaves and re-enters by the same bridge port.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return nil, fmt.Errorf("hairpin mode on %s: %w", hostName, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", hostName, err)
	}
	peer, err := netlink.LinkByName(peerName)
	if err != nil {
		return nil, fmt.Errorf("look up veth %s: %w", peerName, err)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("open network namespace of %d: %w", pid, err)
	}
	defer ns.Close()
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		return nil, fmt.Errorf("move %s into the container's namespace: %w", peerName, err)
	}
	if err := b.configureInside(ns, peerName, o.IfName, ip, hwaddr, o.DefaultRoute && !b.cfg.Internal); err != nil {
		return nil, err
	}
	ep = &Endpoint{
		Network:   b.cfg.Name,
		NetworkID: b.cfg.NetworkID,
		ID:        randHex(32),
		IP:        ip,
		PrefixLen: b.subnet.Bits(),
		Gateway:   b.Gateway(),
		MAC:       hwaddr.String(),
		HostVeth:  hostName,
		IfName:    o.IfName,
		// An internal network never carries the default route.
		DefaultRoute: o.DefaultRoute && !b.cfg.Internal,
	}
	at := &attachment{ep: ep}
	defer func() {
		if err != nil {
			for _, p := range at.proxies {
				p.close()
			}
		}
	}()
	for _, pb := range ports {
		p, err := startProxy(pb, ip, b.log)
		if err != nil {
			return nil, err
		}
		at.proxies = append(at.proxies, p)
		ep.Ports = append(ep.Ports, p.binding)
	}
	b.mu.Lock()
	b.eps[id] = at
	err = b.nat.setPortsLocked(b.allPortsLocked())
	if err != nil {
		delete(b.eps, id)
	}
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ep, nil
}

func (b *Bridge) configureInside(ns netns.NsHandle, peerName, ifName string, ip netip.Addr, hw net.HardwareAddr, defaultRoute bool) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the container's namespace: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName(peerName)
	if err != nil {
		return fmt.Errorf("look up %s in the container: %w", peerName, err)
	}
	if err := h.LinkSetName(l, ifName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", peerName, ifName, err)
	}
	if err := h.LinkSetHardwareAddr(l, hw); err != nil {
		return fmt.Errorf("set MAC address of %s: %w", ifName, err)
	}
	pfx := netip.PrefixFrom(ip, b.subnet.Bits())
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(pfx)}); err != nil {
		return fmt.Errorf("set address %s on %s: %w", pfx, ifName, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", ifName, err)
	}
	if !defaultRoute {
		return nil
	}
	gw := net.IP(b.Gateway().AsSlice())
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

// Detach undoes Attach: the published ports, the NAT rules, the veth (its
// peer goes with it) and the address. Detaching an unknown id does
// nothing.
func (b *Bridge) Detach(id string) {
	b.mu.Lock()
	at, ok := b.eps[id]
	if !ok {
		b.mu.Unlock()
		return
	}
	delete(b.eps, id)
	delete(b.used, at.ep.IP)
	if err := b.nat.setPortsLocked(b.allPortsLocked()); err != nil {
		b.log.Warn("updating published ports", "err", err)
	}
	b.mu.Unlock()
	for _, p := range at.proxies {
		p.close()
	}
	if l, err := netlink.LinkByName(at.ep.HostVeth); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			b.log.Warn("removing veth", "veth", at.ep.HostVeth, "err", err)
		}
	}
}

// Endpoints is the number of containers attached.
func (b *Bridge) Endpoints() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.eps)
}

// Destroy closes the network and deletes its Linux bridge.
func (b *Bridge) Destroy() error {
	b.Close()
	l, err := netlink.LinkByName(b.cfg.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up bridge %s: %w", b.cfg.Bridge, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete bridge %s: %w", b.cfg.Bridge, err)
	}
	return nil
}

// Close stops every proxy and removes the NAT table; the bridge stays.
func (b *Bridge) Close() {
	b.mu.Lock()
	ats := b.eps
	b.eps = map[string]*attachment{}
	b.used = map[netip.Addr]string{}
	b.mu.Unlock()
	for _, at := range ats {
		for _, p := range at.proxies {
			p.close()
		}
		if l, err := netlink.LinkByName(at.ep.HostVeth); err == nil {
			_ = netlink.LinkDel(l)
		}
	}
	if err := b.nat.remove(); err != nil {
		b.log.Warn("removing nftables table", "err", err)
	}
}

// natRule is one DNAT of a published port.
type natRule struct {
	proto    string
	hostIP   netip.Addr
	hostPort uint16
	target   netip.AddrPort
}

func (b *Bridge) allPortsLocked() []natRule {
	var rules []natRule
	for _, at := range b.eps {
		for _, p := range at.ep.Ports {
			rules = append(rules, natRule{proto: p.Proto, hostIP: p.HostIP, hostPort: p.HostPort, target: netip.AddrPortFrom(at.ep.IP, p.ContainerPort)})
		}
	}
	sort.Slice(rules, func(i, j int) bool {
		if rules[i].hostPort != rules[j].hostPort {
			return rules[i].hostPort < rules[j].hostPort
		}
		return rules[i].proto < rules[j].proto
	})
	return rules
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))[:n*2]
}
