package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
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
