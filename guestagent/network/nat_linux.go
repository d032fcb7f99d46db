//go:build linux

package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// tableName is the nftables table the engine owns for a bridge; it is
// replaced whole at startup, so rules of a previous run never linger.
func tableName(bridge string) string { return "berth_" + bridge }

// natTable is the engine's nftables table: outbound masquerade for the
// bridge's subnet, the masquerade of hairpinned published ports, an
// accepting forward chain for the bridge, and a DNAT rule per published
// port for traffic addressed to one of this machine's addresses.
type natTable struct {
	bridge string
	subnet netip.Prefix
	table  *nftables.Table
	pre    *nftables.Chain
	// out DNATs this machine's own connections to published ports
	// (loopback included) in the kernel, so they do not go through the
	// proxy; the proxy's socket still reserves the port.
	out *nftables.Chain
}

func newNATTable(bridge string, subnet netip.Prefix, internal bool) (*natTable, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: tableName(bridge)}
	// Add then delete, so that deleting a table that is not there is not
	// an error; then add it fresh.
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(t)
	n := &natTable{bridge: bridge, subnet: subnet, table: t}
	n.pre = c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	n.out = c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	ifname := ifnameData(bridge)
	if internal {
		// Traffic of an internal network stays on its bridge: whatever
		// would leave it or enter it from elsewhere is dropped.
		for _, keys := range [][2]expr.MetaKey{{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME}, {expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME}} {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
				&expr.Meta{Key: keys[0], Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
				&expr.Meta{Key: keys[1], Register: 1},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	} else {
		// ip saddr SUBNET oifname != BRIDGE masquerade
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(saddrIn(subnet),
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname},
			&expr.Masq{},
		)})
		// ip saddr SUBNET oifname BRIDGE ct status dnat masquerade (hairpin)
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(saddrIn(subnet),
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
			&expr.Masq{},
		)})
		// ip saddr 127.0.0.0/8 oifname BRIDGE masquerade: a loopback
		// client DNATed to a container gets the gateway as its source,
		// which the container can answer.
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(saddrIn(netip.MustParsePrefix("127.0.0.0/8")),
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			&expr.Masq{},
		)})
		// The forward chain accepts the bridge's traffic both ways, so a
		// stricter policy elsewhere in this table family cannot be the
		// reason containers are cut off.
		for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
				&expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
				&expr.Verdict{Kind: expr.VerdictAccept},
			}})
		}
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("set up nftables table %s (is nf_tables with NAT in the kernel?): %w", tableName(bridge), err)
	}
	return n, nil
}

// setPortsLocked replaces the DNAT rules with rules.
func (n *natTable) setPortsLocked(rules []natRule) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.FlushChain(n.pre)
	c.FlushChain(n.out)
	for _, r := range rules {
		proto := byte(unix.IPPROTO_TCP)
		if r.proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		var ex []expr.Any
		if r.hostIP.IsValid() && !r.hostIP.IsUnspecified() {
			ex = append(ex,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: r.hostIP.AsSlice()},
			)
		} else {
			// fib daddr type local
			ex = append(ex,
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
			)
		}
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.hostPort)},
			&expr.Immediate{Register: 1, Data: r.target.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.target.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		c.AddRule(&nftables.Rule{Table: n.table, Chain: n.pre, Exprs: ex})
		c.AddRule(&nftables.Rule{Table: n.table, Chain: n.out, Exprs: ex})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("update published-port rules: %w", err)
	}
	return nil
}

func (n *natTable) remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.DelTable(n.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", n.table.Name, err)
	}
	return nil
}

func saddrIn(p netip.Prefix) []expr.Any {
	mask := prefixToIPNet(p).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// ifnameData is an interface name as nftables compares it: padded with
// NULs to IFNAMSIZ.
func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// ipsDstNAT is IPS_DST_NAT of the conntrack status bits (bit 5).
const ipsDstNAT = 1 << 5

// isolation is the engine's table that keeps bridge networks apart: a
// packet forwarded from one of the engine's bridges to another is dropped
// (dockerd's DOCKER-ISOLATION chains). Its forward chain is rewritten
// whenever a network comes or goes.
type isolation struct {
	table *nftables.Table
	fwd   *nftables.Chain
}

func newIsolation(name string) (*isolation, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: name}
	c.AddTable(t)
	c.DelTable(t)
	t = c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	// Before the bridges' own accepting chains, though order does not
	// matter for a drop.
	prio := nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 1)
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: prio, Policy: &accept})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("set up nftables table %s: %w", name, err)
	}
	return &isolation{table: t, fwd: fwd}, nil
}

// set drops traffic between every two distinct bridges of bridges.
func (iso *isolation) set(bridges []string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.FlushChain(iso.fwd)
	for _, a := range bridges {
		for _, b := range bridges {
			if a == b {
				continue
			}
			c.AddRule(&nftables.Rule{Table: iso.table, Chain: iso.fwd, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(a)},
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(b)},
				&expr.Verdict{Kind: expr.VerdictDrop},
			}})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("update nftables table %s: %w", iso.table.Name, err)
	}
	return nil
}

func (iso *isolation) remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	c.DelTable(iso.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", iso.table.Name, err)
	}
	return nil
}
