package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PortBinding is one published port: the host side (HostIP may be
// invalid for every address; HostPort 0 asks for an ephemeral port) and
// the container's port.
type PortBinding struct {
	Proto    string     // "tcp" or "udp"
	HostIP   netip.Addr // invalid: all addresses
	HostPort uint16
	// HostPortEnd, when above HostPort, makes HostPort..HostPortEnd a
	// range of which the first free port is taken.
	HostPortEnd   uint16
	ContainerPort uint16
}

func (p PortBinding) String() string {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s %s:%d->%d", p.Proto, host, p.HostPort, p.ContainerPort)
}

// Endpoint is a container's attachment to the bridge.
type Endpoint struct {
	Network   string // "bridge"
	NetworkID string
	ID        string // endpoint id
	IP        netip.Addr
	PrefixLen int
	Gateway   netip.Addr
	MAC       string
	HostVeth  string
	// IfName is the interface inside the container; DefaultRoute says
	// the container's default route goes through this network.
	IfName       string
	DefaultRoute bool
	// Ports are the published ports with the host ports actually bound.
	Ports []PortBinding
}

// ParseHostPort parses the HostPort of a binding: "" is ephemeral (0);
// "8080" a port; "8080-8081" a range whose first port is returned with
// its length.
func ParseHostPort(s string) (first uint16, n int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 1, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid host port %q", s)
	}
	if !isRange {
		return uint16(a), 1, nil
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("invalid host port range %q", s)
	}
	return uint16(a), int(b-a) + 1, nil
}

// Network is a network's definition as the engine keeps it: the
// predefined bridge, host and none, and the user-defined bridges.
type Network struct {
	ID      string
	Name    string
	Driver  string // "bridge", "host" or "null"
	Created time.Time
	// Subnet and Gateway of a bridge network; IPRange, when valid, is the
	// part of the subnet addresses are given from.
	Subnet  netip.Prefix `json:",omitzero"`
	Gateway netip.Addr   `json:",omitzero"`
	IPRange netip.Prefix `json:",omitzero"`
	// SubnetChosen says the user gave the subnet (static addresses are
	// allowed only then, as in dockerd).
	SubnetChosen bool
	Internal     bool
	Attachable   bool
	Options      map[string]string
	Labels       map[string]string
	// Bridge is the Linux bridge of a bridge network.
	Bridge string
	// Predefined networks cannot be removed.
	Predefined bool `json:"-"`
}

// UserDefined reports whether containers on the network get the embedded
// DNS server and name resolution (every bridge network but the default).
func (n Network) UserDefined() bool { return !n.Predefined && n.Driver == "bridge" }

// Pool is one entry of daemon.json's default-address-pools: subnets of
// Size bits are carved from Base.
type Pool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools are dockerd's: 172.17.0.0/16 to 172.31.0.0/16, then
// 192.168.0.0/16 in /20s.
func DefaultPools() []Pool {
	var ps []Pool
	for i := 17; i <= 31; i++ {
		ps = append(ps, Pool{Base: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16), Size: 16})
	}
	return append(ps, Pool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}

// ValidatePool checks one pool entry.
func ValidatePool(p Pool) error {
	if !p.Base.IsValid() || !p.Base.Addr().Is4() {
		return fmt.Errorf("base %s: an IPv4 prefix is required", p.Base)
	}
	if p.Size < p.Base.Bits() || p.Size > 30 {
		return fmt.Errorf("size %d: must be between the base's prefix length %d and 30", p.Size, p.Base.Bits())
	}
	return nil
}

// NextSubnet returns the first subnet of pools that overlaps none of
// taken.
func NextSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		if ValidatePool(p) != nil {
			continue
		}
		base := p.Base.Masked()
		n := uint64(1) << (p.Size - base.Bits())
		// A pool is searched through its first 65536 subnets at most.
		n = min(n, 1<<16)
		step := uint64(1) << (32 - p.Size)
		start := addrUint(base.Addr())
		for i := uint64(0); i < n; i++ {
			cand := netip.PrefixFrom(uintAddr(uint32(uint64(start)+i*step)), p.Size)
			free := true
			for _, t := range taken {
				if t.IsValid() && t.Addr().Is4() && t.Overlaps(cand) {
					free = false
					break
				}
			}
			if free {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, errors.New("all predefined address pools have been fully subnetted")
}

func addrUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintAddr(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// NotFoundError is a network that does not exist (404 in the API).
type NotFoundError struct{ Name string }

func (e NotFoundError) Error() string { return fmt.Sprintf("network %s not found", e.Name) }

// NotFound marks the error for the API's status mapping.
func (NotFoundError) NotFound() {}

type invalidError struct{ error }

func (invalidError) InvalidParameter() {}

type conflictError struct{ error }

func (conflictError) Conflict() {}

type forbiddenError struct{ error }

func (forbiddenError) Forbidden() {}

// plugin words the error as dockerd does for an unknown driver.
func (e NotFoundError) plugin() error {
	return pluginNotFound{name: e.Name}
}

type pluginNotFound struct{ name string }

func (e pluginNotFound) Error() string { return fmt.Sprintf("plugin %q not found", e.name) }

func (pluginNotFound) NotFound() {}
