// Package network owns the engine's container networking on bridges: the
// default bridge and user-defined bridge networks (Manager: create, find,
// remove, subnets from the address pools, definitions kept across
// restarts, isolation between bridges), one veth pair per attachment
// moved into the container's network namespace, the address pool of each
// network, outbound NAT and the DNAT of published ports (an nftables
// table per bridge; internal networks keep their traffic on the bridge),
// and the proxies that make published ports answer on the machine's own
// loopback, as dockerd's userland proxy does. Subpackage dns is the
// embedded DNS server.
package network
