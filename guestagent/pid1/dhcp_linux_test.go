package pid1

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The DHCP tests run the client in a network namespace of their own, on
// one end of a veth pair whose other end is in a second namespace of
// theirs, where the test's DHCP server answers. No packet leaves the two
// namespaces; the test's addresses are from 192.0.2.0/24 (TEST-NET-1).

var (
	testServerIP = net.IPv4(192, 0, 2, 1).To4()
	testClientIP = net.IPv4(192, 0, 2, 50).To4()
)

func requireNetAdmin(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the DHCP client test makes network namespaces and a veth pair: needs root")
	}
}

// newNetns makes a network namespace and leaves the calling thread where
// it was.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and dies with the goroutine.
		t.Fatalf("back to the test's netns: %v", err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs fn on a thread in ns and returns the thread to the test's
// namespace afterwards.
func inNetns(t *testing.T, ns netns.NsHandle, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the locked thread ends with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			errc <- fmt.Errorf("back from netns: %w", serr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// dhcpNet is the client's namespace (eth0) and the server's (srv0).
type dhcpNet struct {
	client, server netns.NsHandle
	hc, hs         *netlink.Handle
}

func newDHCPNet(t *testing.T) *dhcpNet {
	t.Helper()
	n := &dhcpNet{client: newNetns(t), server: newNetns(t)}
	var err error
	if n.hc, err = netlink.NewHandleAt(n.client, unix.NETLINK_ROUTE); err != nil {
		t.Fatalf("netlink handle in the client netns: %v", err)
	}
	t.Cleanup(n.hc.Close)
	if n.hs, err = netlink.NewHandleAt(n.server, unix.NETLINK_ROUTE); err != nil {
		t.Fatalf("netlink handle in the server netns: %v", err)
	}
	t.Cleanup(n.hs.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "srv0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(n.client)}
	if err := n.hs.LinkAdd(veth); err != nil {
		t.Fatalf("veth pair: %v", err)
	}
	srv, err := n.hs.LinkByName("srv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.hs.AddrAdd(srv, &netlink.Addr{IPNet: &net.IPNet{IP: testServerIP, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatalf("server address: %v", err)
	}
	if err := n.hs.LinkSetUp(srv); err != nil {
		t.Fatalf("server link up: %v", err)
	}
	return n
}

// testDHCPServer leases testClientIP. It listens on the server's address
// and on the broadcast address apart, so it can tell a renewal (unicast)
// from a rebinding (broadcast).
type testDHCPServer struct {
	lease time.Duration

	mu            sync.Mutex
	silent        bool // answer nothing
	ignoreUnicast bool // answer no unicast REQUEST (renewals)
	nakRenewal    bool // NAK the next REQUEST with a client address
	log           []string
	conn          net.PacketConn // the unicast socket, which sends the answers
}

func (s *testDHCPServer) start(t *testing.T, n *dhcpNet) {
	t.Helper()
	var servers []*server4.Server
	err := inNetns(t, n.server, func() error {
		for _, a := range []struct {
			ip   net.IP
			kind string
		}{{testServerIP, "unicast"}, {net.IPv4bcast, "broadcast"}} {
			conn, err := server4.NewIPv4UDPConn("srv0", &net.UDPAddr{IP: a.ip, Port: dhcpv4.ServerPort})
			if err != nil {
				return fmt.Errorf("server socket on %v: %w", a.ip, err)
			}
			if a.kind == "unicast" {
				s.conn = conn
			}
			kind := a.kind
			srv, err := server4.NewServer("", nil, func(_ net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
				s.handle(peer, m, kind)
			}, server4.WithConn(conn))
			if err != nil {
				return err
			}
			servers = append(servers, srv)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("DHCP server: %v", err)
	}
	for _, srv := range servers {
		go srv.Serve()
		t.Cleanup(func() { srv.Close() })
	}
}

func (s *testDHCPServer) set(f func(s *testDHCPServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// seen returns the log of what the server was sent: "DISCOVER broadcast",
// "REQUEST unicast ciaddr=192.0.2.50", ...
func (s *testDHCPServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *testDHCPServer) handle(peer net.Addr, m *dhcpv4.DHCPv4, kind string) {
	s.mu.Lock()
	entry := fmt.Sprintf("%s %s", strings.TrimPrefix(m.MessageType().String(), "DHCP"), kind)
	renewal := !m.ClientIPAddr.IsUnspecified()
	if renewal {
		entry += " ciaddr=" + m.ClientIPAddr.String()
	}
	s.log = append(s.log, entry)
	silent := s.silent || (kind == "unicast" && s.ignoreUnicast)
	nak := false
	if renewal && s.nakRenewal && !silent {
		nak, s.nakRenewal = true, false
	}
	conn := s.conn
	s.mu.Unlock()
	if silent {
		return
	}
	var reply dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		reply = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		reply = dhcpv4.MessageTypeAck
		if nak {
			reply = dhcpv4.MessageTypeNak
		}
	default:
		return
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServerIP)),
	}
	if reply != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(testClientIP),
			dhcpv4.WithServerIP(testServerIP),
			dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
			dhcpv4.WithOption(dhcpv4.OptRouter(testServerIP)),
			dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 0, 2, 53), net.IPv4(192, 0, 2, 54))),
			dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"corp.test", "test"}})),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0x78}), // 1400
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.lease)),
		)
	}
	resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return
	}
	to := peer
	if renewal {
		to = &net.UDPAddr{IP: m.ClientIPAddr, Port: dhcpv4.ClientPort}
	}
	if reply == dhcpv4.MessageTypeNak {
		to = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
	_, _ = conn.WriteTo(resp.ToBytes(), to)
}

// syncBuffer is a log sink for the client's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startClient runs a dhcpClient for eth0 in the client's namespace until
// the test ends and returns what its ready callback got.
func startClient(t *testing.T, n *dhcpNet, wait time.Duration, fallback bool) (ready <-chan error, resolv string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	resolv = filepath.Join(t.TempDir(), "resolv.conf")
	c := &dhcpClient{
		iface:      "eth0",
		resolvConf: resolv,
		hostname:   "berth",
		log:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		wait:       wait,
		retransmit: 200 * time.Millisecond,
		sends:      3,
		minRetry:   100 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread stays in the client's namespace and ends with this
		// goroutine.
		runtime.LockOSThread()
		if err := netns.Set(n.client); err != nil {
			readyc <- fmt.Errorf("enter the client netns: %w", err)
			return
		}
		c.run(ctx, fallback, func(err error) { readyc <- err })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("client log:\n%s", logs)
		}
	})
	return readyc, resolv, logs
}

// ethState is the client's eth0: its IPv4 addresses (with valid
// lifetimes), default gateway and MTU.
type ethState struct {
	addrs []string
	valid int // valid lifetime of the first address, seconds
	gw    string
	mtu   int
}

func (n *dhcpNet) eth(t *testing.T) ethState {
	t.Helper()
	link, err := n.hc.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in the client netns: %v", err)
	}
	var st ethState
	st.mtu = link.Attrs().MTU
	addrs, err := n.hc.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range addrs {
		st.addrs = append(st.addrs, a.IPNet.String())
		if i == 0 {
			st.valid = a.ValidLft
		}
	}
	routes, err := n.hc.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified() && r.Dst.Mask != nil && net.IP(r.Dst.Mask).IsUnspecified()) && r.Gw != nil {
			st.gw = r.Gw.String()
		}
	}
	return st
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countSeen(s *testDHCPServer, entry string) int {
	n := 0
	for _, e := range s.seen() {
		if e == entry {
			n++
		}
	}
	return n
}

func TestDHCPClientLease(t *testing.T) {
	requireNetAdmin(t)
	n := newDHCPNet(t)
	srv := &testDHCPServer{lease: 4 * time.Second}
	srv.start(t, n)
	ready, resolv, logs := startClient(t, n, 5*time.Second, false)

	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("first lease: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no first lease in 10 s")
	}
	st := n.eth(t)
	if strings.Join(st.addrs, " ") != "192.0.2.50/24" || st.gw != "192.0.2.1" || st.mtu != 1400 {
		t.Fatalf("eth0 after the lease: %+v", st)
	}
	if st.valid < 1 || st.valid > 4 {
		t.Errorf("address lifetime %d s, want the lease's 4 s at most", st.valid)
	}
	conf, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# berth: from the DHCP lease of eth0\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.test test\n"; string(conf) != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", conf, want)
	}
	// DISCOVER (retransmitted when the OFFER is slow on a loaded
	// machine), then REQUEST, both broadcast.
	got := srv.seen()
	i := 0
	for i < len(got) && got[i] == "DISCOVER broadcast" {
		i++
	}
	if i == 0 || i >= len(got) || got[i] != "REQUEST broadcast" {
		t.Errorf("server saw %q, want DISCOVER then REQUEST, broadcast", got)
	}

	// T1 (2 s): a renewal, unicast to the server, from the address.
	eventually(t, 4*time.Second, "renewal at T1", func() bool { return countSeen(srv, "REQUEST unicast ciaddr=192.0.2.50") >= 1 })
	eventually(t, time.Second, "address lifetime refreshed", func() bool { return n.eth(t).valid >= 3 })

	// Renewals unanswered: a rebind from T2, broadcast, keeps the address.
	srv.set(func(s *testDHCPServer) { s.ignoreUnicast = true })
	eventually(t, 6*time.Second, "rebind at T2", func() bool { return countSeen(srv, "REQUEST broadcast ciaddr=192.0.2.50") >= 1 })
	eventually(t, time.Second, "log of the rebind", func() bool { return strings.Contains(logs.String(), "rebind=true") })
	if st := n.eth(t); strings.Join(st.addrs, " ") != "192.0.2.50/24" || st.gw != "192.0.2.1" {
		t.Fatalf("eth0 after the rebind: %+v", st)
	}

	// A NAK on renewal: the address goes and the client starts over.
	srv.set(func(s *testDHCPServer) { s.ignoreUnicast, s.nakRenewal = false, true })
	discovers := countSeen(srv, "DISCOVER broadcast")
	eventually(t, 6*time.Second, "DISCOVER after the NAK", func() bool { return countSeen(srv, "DISCOVER broadcast") > discovers })
	eventually(t, 3*time.Second, "the address again after the NAK", func() bool {
		st := n.eth(t)
		return strings.Join(st.addrs, " ") == "192.0.2.50/24" && st.gw == "192.0.2.1"
	})

	// No server any more: the lease ends, the address goes.
	srv.set(func(s *testDHCPServer) { s.silent = true })
	eventually(t, 6*time.Second, "address gone at the end of the lease", func() bool { return len(n.eth(t).addrs) == 0 })
	// The server is back: a new lease.
	srv.set(func(s *testDHCPServer) { s.silent = false })
	eventually(t, 5*time.Second, "a new lease", func() bool { return strings.Join(n.eth(t).addrs, " ") == "192.0.2.50/24" })
	t.Logf("the server saw: %q", srv.seen())
	if testing.Verbose() {
		t.Logf("client log:\n%s", logs)
	}
}

func TestDHCPClientNoLease(t *testing.T) {
	requireNetAdmin(t)
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			n := newDHCPNet(t) // no server answers
			began := time.Now()
			ready, resolv, logs := startClient(t, n, 1500*time.Millisecond, fallback)
			var err error
			select {
			case err = <-ready:
			case <-time.After(10 * time.Second):
				t.Fatal("no answer from the client in 10 s")
			}
			if took := time.Since(began); took > 4*time.Second {
				t.Errorf("gave up after %v, want about the 1.5 s wait", took)
			}
			st := n.eth(t)
			if !fallback {
				if err == nil || !strings.Contains(err.Error(), "no DHCP lease on eth0 within 1.5s") || !strings.Contains(err.Error(), "no DHCPOFFER") {
					t.Fatalf("error %v, want no DHCP lease ... no DHCPOFFER", err)
				}
				if len(st.addrs) != 0 {
					t.Errorf("eth0 has %v without a lease", st.addrs)
				}
				eventually(t, 2*time.Second, "console error", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
				return
			}
			if err != nil {
				t.Fatalf("with the fallback: %v", err)
			}
			if strings.Join(st.addrs, " ") != guestCIDR || st.gw != gatewayIP {
				t.Errorf("eth0 with the fallback: %+v", st)
			}
			if conf, err := os.ReadFile(resolv); err != nil || string(conf) != "nameserver "+nameserver+"\n" {
				t.Errorf("resolv.conf with the fallback: %q, %v", conf, err)
			}
			if !strings.Contains(logs.String(), "static user-network addresses instead") {
				t.Errorf("no console line for the fallback:\n%s", logs)
			}
		})
	}
}
