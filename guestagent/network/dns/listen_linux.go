package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"golang.org/x/sys/unix"
)

// Listen opens a UDP and a TCP listener on addr (the engine passes
// 127.0.0.11:53) inside the network namespace at nsPath (e.g.
// "/proc/1234/ns/net"), bringing the namespace's loopback up if it is
// down, and serves a [Handler] for cfg on them until Close. Queries
// forwarded to cfg.Upstreams are sent from the caller's (the engine's)
// network namespace, not the container's.
func Listen(nsPath string, addr netip.AddrPort, cfg Config) (*Server, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	udp, tcp, err := listenInNamespace(nsPath, addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The handler and the servers' goroutines start here, on an ordinary
	// goroutine, so the sockets of forwarded queries are the engine's.
	s, err := serve(newHandler(ctx, cfg), cancel, udp, tcp)
	if err != nil {
		return nil, fmt.Errorf("dns: serve on %s in network namespace %s: %w", addr, nsPath, err)
	}
	return s, nil
}

// listenInNamespace makes the listeners on a thread of their own that
// enters the namespace at nsPath: a socket stays in the namespace it was
// made in.
func listenInNamespace(nsPath string, addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	type sockets struct {
		udp *net.UDPConn
		tcp *net.TCPListener
		err error
	}
	made := make(chan sockets, 1)
	go func() {
		runtime.LockOSThread()
		var s sockets
		var back bool
		s.udp, s.tcp, back, s.err = listenOnThread(nsPath, addr)
		if back {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread, stuck in the container's namespace, ends
		// with this goroutine.
		made <- s
	}()
	s := <-made
	return s.udp, s.tcp, s.err
}

// listenOnThread makes the listeners in the namespace at nsPath, on the
// calling goroutine's locked thread; back reports whether the thread is in
// its own network namespace again.
func listenOnThread(nsPath string, addr netip.AddrPort) (udp *net.UDPConn, tcp *net.TCPListener, back bool, err error) {
	own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, true, fmt.Errorf("dns: open the engine's network namespace: %w", err)
	}
	defer unix.Close(own)
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, true, fmt.Errorf("dns: open network namespace %s: %w", nsPath, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, nil, true, fmt.Errorf("dns: enter network namespace %s: %w", nsPath, err)
	}
	udp, tcp, err = listenHere(addr)
	if errBack := unix.Setns(own, unix.CLONE_NEWNET); errBack != nil {
		if err == nil {
			udp.Close()
			tcp.Close()
		}
		return nil, nil, false, fmt.Errorf("dns: return to the engine's network namespace from %s: %w", nsPath, errBack)
	}
	if err != nil {
		return nil, nil, true, fmt.Errorf("dns: in network namespace %s: %w", nsPath, err)
	}
	return udp, tcp, true, nil
}

// listenHere makes the listeners in the thread's network namespace.
func listenHere(addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	if err := loopbackUp(); err != nil {
		return nil, nil, err
	}
	// "udp4"/"tcp4" (or 6) rather than "udp": the net package then need
	// not probe the stack's IPv6 support, which it would do once, in
	// whichever namespace it first runs and remember for the engine.
	udpNet, tcpNet := "udp4", "tcp4"
	if addr.Addr().Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	udp, err := net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, nil, fmt.Errorf("listen on udp %s: %w", addr, err)
	}
	tcp, err := net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		udp.Close()
		return nil, nil, fmt.Errorf("listen on tcp %s: %w", addr, err)
	}
	return udp, tcp, nil
}

// loopbackUp brings the thread's namespace's lo up if it is down:
// 127.0.0.11 is on lo's 127.0.0.0/8 route, and binds once lo is up.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket to bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("ifreq lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of lo: %w", err)
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}
