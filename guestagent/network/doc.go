// Package network owns the engine's container networking on the default
// bridge: the Linux bridge and its gateway address, one veth pair per
// container moved into the container's network namespace, the address
// pool, outbound NAT and the DNAT of published ports (an nftables table
// per bridge), and the proxies that make published ports answer on the
// machine's own loopback, as dockerd's userland proxy does.
package network
