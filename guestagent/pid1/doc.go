// Package pid1 owns PID 1 of the Berth VM (`berth-agent init`): the mounts,
// module loading, the switch from the initramfs to a tmpfs root, the
// virtio-serial port links, the data disk (made on first boot, grown online),
// the network, virtiofs shares, cgroup v2 delegation, the clock, zombie
// reaping, the engine's supervision, the guest end of the channel and the
// orderly shutdown.
//
// The network is lo and eth0. vz's NAT and Hyper-V's Default Switch give
// addresses only by DHCP, and QEMU's user network runs a DHCP server too,
// so pid1 is a DHCPv4 client on eth0 (dhcp_linux.go, over the nclient4
// package of github.com/insomniacslk/dhcp; lease.go checks what an ACK
// carries): DISCOVER, OFFER, REQUEST, ACK over a raw socket, then the
// address with its prefix (and the lease's lifetime, so the kernel drops
// it should pid1 not), the default route through the router, the MTU
// option, and /etc/resolv.conf from the name servers and search domains. A
// goroutine keeps the lease for the life of the VM: it renews with the
// server at T1, rebinds with any server from T2, and when the lease ends or
// a server refuses it, takes the address away and starts over. The kernel
// parameter berth.net chooses:
//
//   - berth.net=dhcp (the default): DHCP only. When no lease comes within
//     10 s the console shows the error and boot goes on without an address
//     on eth0; the client keeps asking and applies a lease when one comes.
//   - berth.net=auto: DHCP, and when no lease comes within 10 s, QEMU user
//     network's static addresses (10.0.2.15/24 via 10.0.2.2, resolver
//     10.0.2.3), said on the console; the client then stops asking.
//   - berth.net=static: those static addresses at once, no DHCP.
package pid1
