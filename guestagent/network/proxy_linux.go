//go:build linux

package network

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proxy makes one published port answer on the machine's own addresses,
// loopback included (the DNAT rules see only traffic that arrives from
// elsewhere), by relaying to the container. Holding the listening socket
// also reserves the host port, so a second container cannot publish it.
type proxy struct {
	binding PortBinding
	target  netip.AddrPort
	log     *slog.Logger

	tcp net.Listener
	udp *net.UDPConn

	wg   sync.WaitGroup
	mu   sync.Mutex
	done bool
	// conns are the live relays, closed with the proxy.
	conns map[io.Closer]struct{}
}

// startProxy binds pb's host port, or the first free one of its range.
func startProxy(pb PortBinding, ip netip.Addr, log *slog.Logger) (*proxy, error) {
	if pb.HostPortEnd <= pb.HostPort || pb.HostPort == 0 {
		return startProxyOn(pb, ip, log)
	}
	var firstErr error
	for port := int(pb.HostPort); port <= int(pb.HostPortEnd); port++ {
		one := pb
		one.HostPort, one.HostPortEnd = uint16(port), 0
		p, err := startProxyOn(one, ip, log)
		if err == nil {
			return p, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func startProxyOn(pb PortBinding, ip netip.Addr, log *slog.Logger) (*proxy, error) {
	p := &proxy{binding: pb, target: netip.AddrPortFrom(ip, pb.ContainerPort), log: log, conns: map[io.Closer]struct{}{}}
	host := ""
	if pb.HostIP.IsValid() {
		host = pb.HostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(pb.HostPort)))
	switch pb.Proto {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return nil, bindError(pb, err)
		}
		p.tcp = l
		p.binding.HostPort = uint16(l.Addr().(*net.TCPAddr).Port)
		p.wg.Add(1)
		go p.serveTCP()
	case "udp":
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return nil, bindError(pb, err)
		}
		c, err := net.ListenUDP("udp4", ua)
		if err != nil {
			return nil, bindError(pb, err)
		}
		p.udp = c
		p.binding.HostPort = uint16(c.LocalAddr().(*net.UDPAddr).Port)
		p.wg.Add(1)
		go p.serveUDP()
	default:
		return nil, fmt.Errorf("unsupported protocol %q for port %d", pb.Proto, pb.ContainerPort)
	}
	return p, nil
}

// bindError words a busy port as dockerd does.
func bindError(pb PortBinding, err error) error {
	host := "0.0.0.0"
	if pb.HostIP.IsValid() {
		host = pb.HostIP.String()
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("Bind for %s:%d failed: port is already allocated", host, pb.HostPort)
	}
	return fmt.Errorf("listen on %s:%d/%s: %w", host, pb.HostPort, pb.Proto, err)
}

func (p *proxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *proxy) serveTCP() {
	defer p.wg.Done()
	for {
		in, err := p.tcp.Accept()
		if err != nil {
			return
		}
		go p.relayTCP(in)
	}
}

func (p *proxy) relayTCP(in net.Conn) {
	defer in.Close()
	out, err := net.DialTimeout("tcp4", p.target.String(), 10*time.Second)
	if err != nil {
		p.log.Debug("published port: dial container", "target", p.target, "err", err)
		return
	}
	defer out.Close()
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(out, in) // splice(2) between the two TCP sockets
		_ = out.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(in, out)
	_ = in.(*net.TCPConn).CloseWrite()
	wg.Wait()
}

// udpIdle is how long a UDP client's relay lives without traffic.
const udpIdle = 90 * time.Second

func (p *proxy) serveUDP() {
	defer p.wg.Done()
	var mu sync.Mutex
	clients := map[netip.AddrPort]*net.UDPConn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := p.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			mu.Lock()
			for _, c := range clients {
				_ = c.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		out, ok := clients[from]
		if !ok {
			out, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(p.target))
			if err != nil {
				mu.Unlock()
				continue
			}
			clients[from] = out
			go func() {
				defer func() {
					mu.Lock()
					delete(clients, from)
					mu.Unlock()
					_ = out.Close()
				}()
				rb := make([]byte, 65535)
				for {
					_ = out.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := out.Read(rb)
					if err != nil {
						return
					}
					if _, err := p.udp.WriteToUDPAddrPort(rb[:m], from); err != nil {
						return
					}
				}
			}()
		}
		mu.Unlock()
		_, _ = out.Write(buf[:n])
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.done = true
	conns := p.conns
	p.conns = map[io.Closer]struct{}{}
	p.mu.Unlock()
	if p.tcp != nil {
		_ = p.tcp.Close()
	}
	if p.udp != nil {
		_ = p.udp.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
}
