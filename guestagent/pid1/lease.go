package pid1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is what pid1 takes from a DHCPv4 ACK: the address and everything
// it applies with it. Every field was checked: a Lease holds no value a
// server could use to write outside its place (resolv.conf lines, say).
type Lease struct {
	Addr   netip.Prefix // the address with the subnet's prefix length
	Router netip.Addr   // the default gateway; invalid when none was given
	DNS    []netip.Addr // at most maxNameservers
	Search []string     // search domains: the domain search list, else the domain name
	MTU    int          // the interface MTU option; 0 when absent
	Server netip.Addr   // the server identifier; invalid when none was given

	// Time is the lease time, T1 when to renew and T2 when to rebind,
	// counted from the request. Forever is an infinite lease; the three
	// durations are then zero.
	Time    time.Duration
	T1, T2  time.Duration
	Forever bool
}

// ErrBadLease is returned for a DHCP answer pid1 cannot take as a lease.
var ErrBadLease = errors.New("bad DHCP lease")

// Limits on what a lease carries into resolv.conf.
const (
	maxNameservers = 3   // what the resolver reads (MAXNS)
	maxSearch      = 6   // search domains kept
	maxSearchChars = 256 // the whole search line
)

// defaultLeaseTime applies when an ACK carries no lease time.
const defaultLeaseTime = time.Hour

// ParseLease parses a DHCPv4 message as it came off the wire and returns
// the lease of an ACK.
func ParseLease(packet []byte) (Lease, error) {
	msg, err := dhcpv4.FromBytes(packet)
	if err != nil {
		return Lease{}, fmt.Errorf("%w: %w", ErrBadLease, err)
	}
	return leaseFromACK(msg)
}

// leaseFromACK checks an ACK and takes its lease. Options that do not
// parse or make no sense (a zero DNS server, an MTU below IPv4's minimum)
// are left out; an ACK without a usable address is an error.
func leaseFromACK(ack *dhcpv4.DHCPv4) (Lease, error) {
	if ack.OpCode != dhcpv4.OpcodeBootReply || ack.MessageType() != dhcpv4.MessageTypeAck {
		return Lease{}, fmt.Errorf("%w: not an ACK (%s %s)", ErrBadLease, ack.OpCode, ack.MessageType())
	}
	ip, ok := unicast4(ack.YourIPAddr)
	if !ok {
		return Lease{}, fmt.Errorf("%w: address %v", ErrBadLease, ack.YourIPAddr)
	}
	bits, err := prefixLength(ack, ip)
	if err != nil {
		return Lease{}, err
	}
	l := Lease{Addr: netip.PrefixFrom(ip, bits)}
	for _, r := range ack.Router() {
		if a, ok := unicast4(r); ok && a != ip {
			l.Router = a
			break
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := unicast4(d); ok && len(l.DNS) < maxNameservers {
			l.DNS = append(l.DNS, a)
		}
	}
	l.Search = searchDomains(ack)
	if v := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(v) == 2 {
		if mtu := int(binary.BigEndian.Uint16(v)); mtu >= 68 {
			l.MTU = mtu
		}
	}
	if a, ok := unicast4(ack.ServerIdentifier()); ok {
		l.Server = a
	}
	if err := l.setTimes(ack); err != nil {
		return Lease{}, err
	}
	return l, nil
}

// setTimes takes the lease time, T1 and T2, with RFC 2131's defaults (T1 at
// half the lease, T2 at seven eighths) for ones absent or out of order.
func (l *Lease) setTimes(ack *dhcpv4.DHCPv4) error {
	lt := ack.Options.Get(dhcpv4.OptionIPAddressLeaseTime)
	switch {
	case lt == nil:
		l.Time = defaultLeaseTime
	case len(lt) != 4:
		return fmt.Errorf("%w: lease time option of %d bytes", ErrBadLease, len(lt))
	case binary.BigEndian.Uint32(lt) == math.MaxUint32:
		l.Forever = true
		return nil
	case binary.BigEndian.Uint32(lt) == 0:
		return fmt.Errorf("%w: lease time 0", ErrBadLease)
	default:
		l.Time = time.Duration(binary.BigEndian.Uint32(lt)) * time.Second
	}
	l.T2 = ack.IPAddressRebindingTime(0)
	if l.T2 <= 0 || l.T2 > l.Time {
		l.T2 = l.Time / 8 * 7
	}
	l.T1 = ack.IPAddressRenewalTime(0)
	if l.T1 <= 0 || l.T1 > l.T2 {
		l.T1 = min(l.Time/2, l.T2)
	}
	return nil
}

// prefixLength is the subnet mask's prefix length, or the address class's
// when the ACK has no mask.
func prefixLength(ack *dhcpv4.DHCPv4, ip netip.Addr) (int, error) {
	if v := ack.Options.Get(dhcpv4.OptionSubnetMask); v != nil {
		if len(v) != 4 {
			return 0, fmt.Errorf("%w: subnet mask of %d bytes", ErrBadLease, len(v))
		}
		ones, bits := net.IPMask(v).Size()
		if bits != 32 || ones == 0 {
			return 0, fmt.Errorf("%w: subnet mask %v", ErrBadLease, net.IP(v))
		}
		return ones, nil
	}
	switch b := ip.As4()[0]; {
	case b < 128:
		return 8, nil
	case b < 192:
		return 16, nil
	default:
		return 24, nil
	}
}

// unicast4 returns ip as an IPv4 address another host can have: not
// unspecified, broadcast, multicast, loopback or in 0.0.0.0/8.
func unicast4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if !a.Is4() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || a.As4()[0] == 0 {
		return netip.Addr{}, false
	}
	return a, true
}

// searchDomains is the domain search list (option 119) when present, else
// the domain name (option 15, which some servers fill with several names
// apart by spaces). Names that are not hostnames are dropped.
func searchDomains(ack *dhcpv4.DHCPv4) []string {
	var names []string
	if labels := ack.DomainSearch(); labels != nil && len(labels.Labels) > 0 {
		names = labels.Labels
	} else {
		names = strings.Fields(ack.DomainName())
	}
	var out []string
	total := len("search")
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		if !validDomain(n) || total+1+len(n) > maxSearchChars {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || strings.EqualFold(o, n)
		}
		if dup {
			continue
		}
		out = append(out, n)
		total += 1 + len(n)
		if len(out) == maxSearch {
			break
		}
	}
	return out
}

// validDomain reports whether name is a DNS name of letters, digits,
// hyphens and underscores, labels of 1 to 63 bytes, 253 in all, whose last
// label is not all digits (an IPv4 address is no domain).
func validDomain(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ResolvConf is the resolv.conf of the lease: its name servers and search
// domains.
func (l Lease) ResolvConf(iface string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# berth: from the DHCP lease of %s\n", iface)
	for _, d := range l.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	if len(l.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(l.Search, " "))
	}
	return b.Bytes()
}
