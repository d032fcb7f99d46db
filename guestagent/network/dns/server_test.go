package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// exchange asks the server at addr q over network with a real client.
func exchange(t *testing.T, network string, addr netip.AddrPort, q *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(q, addr.String())
	if err != nil {
		t.Fatalf("%s query %v to %s: %v", network, q.Question, addr, err)
	}
	if r.Id != q.Id {
		t.Errorf("reply ID %d, query's %d", r.Id, q.Id)
	}
	return r
}

// TestServeLoopback serves on loopback sockets, without a namespace: the
// part of Listen after the sockets are made.
func TestServeLoopback(t *testing.T) {
	up := startUpstream(t, zone(testZone))
	udp, tcp := loopbackPair(t, "127.0.0.1")
	addr := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	h := newHandler(ctx, Config{Names: testNames(), Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()})
	s, err := serve(h, cancel, udp, tcp)
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, addr, query("web.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 2 {
			t.Errorf("%s: %v, want two addresses", network, r.Answer)
		}
		r = exchange(t, network, addr, query("example.test.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 1 {
			t.Errorf("%s: forwarded %v, want one address", network, r.Answer)
		}
	}
	// The server's own acceptance check answers a message of two
	// questions as the handler would.
	two := query("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	wantRcode(t, exchange(t, "udp", addr, two), dns.RcodeFormatError)

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close again: %v", err)
	}
	// Both ports are free again.
	udp, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("udp port not released by Close: %v", err)
	}
	udp.Close()
	tcp, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("tcp port not released by Close: %v", err)
	}
	tcp.Close()
}

// TestCloseDoesNotWaitForUpstreams: a query forwarded to a silent upstream
// does not hold Close for the upstream timeout.
func TestCloseDoesNotWaitForUpstreams(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentAddr := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	udp, tcp := loopbackPair(t, "127.0.0.1")
	addr := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	h := newHandler(ctx, Config{Upstreams: []netip.AddrPort{silentAddr, silentAddr, silentAddr}, Logger: quietLogger()})
	s, err := serve(h, cancel, udp, tcp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wire, err := query("example.test.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	// Wait for the forward to reach the silent upstream.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := silent.ReadFrom(make([]byte, 512)); err != nil {
		t.Fatalf("the query was not forwarded: %v", err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > upstreamTimeout {
		t.Errorf("Close took %v with a forward in flight", d)
	}
}
