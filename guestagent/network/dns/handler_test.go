package dns

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeNames is the engine's names for the tests.
type fakeNames struct {
	v4  map[string][]netip.Addr
	ptr map[netip.Addr]string
}

func (n fakeNames) LookupIPv4(name string) ([]netip.Addr, bool) {
	addrs, ok := n.v4[name]
	return addrs, ok
}

func (n fakeNames) LookupPTR(addr netip.Addr) (string, bool) {
	name, ok := n.ptr[addr]
	return name, ok
}

func testNames() fakeNames {
	return fakeNames{
		v4: map[string][]netip.Addr{
			"web":        {netip.MustParseAddr("10.89.0.2"), netip.MustParseAddr("10.89.0.3")},
			"db":         {netip.MustParseAddr("10.89.0.4")},
			"db.netname": {netip.MustParseAddr("10.89.0.4")},
			"pending":    nil, // known, no address yet
		},
		ptr: map[netip.Addr]string{
			netip.MustParseAddr("10.89.0.2"):   "web.netname",
			netip.MustParseAddr("fd00::1:2"):   "web6.netname.",
			netip.MustParseAddr("10.89.0.99"):  "bad name with spaces and a label that is far too long " + string(make([]byte, 70)),
			netip.MustParseAddr("10.89.0.100"): "",
		},
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// recorder is a dns.ResponseWriter that keeps what is written, as a client
// of the given protocol would see it.
type recorder struct {
	tcp  bool
	msgs []*dns.Msg
}

func (w *recorder) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 11), Port: 53}
}

func (w *recorder) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(10, 89, 0, 2), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(10, 89, 0, 2), Port: 40000}
}

func (w *recorder) WriteMsg(m *dns.Msg) error {
	w.msgs = append(w.msgs, m)
	return nil
}

func (w *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msgs = append(w.msgs, m)
	return len(b), nil
}

func (w *recorder) Close() error        { return nil }
func (w *recorder) TsigStatus() error   { return nil }
func (w *recorder) TsigTimersOnly(bool) {}
func (w *recorder) Hijack()             {}

// ask serves q with h as a client over UDP (tcp false) or TCP would, and
// returns the one reply, after a round trip through the wire format.
func ask(t *testing.T, h *Handler, tcp bool, q *dns.Msg) *dns.Msg {
	t.Helper()
	w := &recorder{tcp: tcp}
	h.ServeDNS(w, q)
	if len(w.msgs) != 1 {
		t.Fatalf("%d replies to %v, want 1", len(w.msgs), q.Question)
	}
	wire, err := w.msgs[0].Pack()
	if err != nil {
		t.Fatalf("pack the reply to %v: %v", q.Question, err)
	}
	if !tcp && len(wire) > udpSize(q) {
		t.Errorf("a UDP reply of %d bytes, the client reads %d", len(wire), udpSize(q))
	}
	reply := new(dns.Msg)
	if err := reply.Unpack(wire); err != nil {
		t.Fatalf("unpack the reply: %v", err)
	}
	if reply.Id != q.Id {
		t.Errorf("reply ID %d, query's %d", reply.Id, q.Id)
	}
	if !reply.Response {
		t.Errorf("the reply to %v has no QR bit", q.Question)
	}
	return reply
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.Id = 0x1234
	return m
}

func wantRcode(t *testing.T, m *dns.Msg, rcode int) {
	t.Helper()
	if m.Rcode != rcode {
		t.Fatalf("rcode %s, want %s (%v)", dns.RcodeToString[m.Rcode], dns.RcodeToString[rcode], m)
	}
}

func aAddrs(t *testing.T, m *dns.Msg) []netip.Addr {
	t.Helper()
	var addrs []netip.Addr
	for _, rr := range m.Answer {
		a, ok := rr.(*dns.A)
		if !ok {
			t.Fatalf("answer %v is no A record", rr)
		}
		addr, _ := netip.AddrFromSlice(a.A)
		addrs = append(addrs, addr.Unmap())
	}
	return addrs
}

func TestLocalA(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	for _, tcp := range []bool{false, true} {
		r := ask(t, h, tcp, query("web.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if r.Authoritative {
			t.Error("a local answer is authoritative")
		}
		if !r.RecursionAvailable {
			t.Error("a local answer does not offer recursion")
		}
		if !r.RecursionDesired {
			t.Error("the RD bit of the query was not copied")
		}
		want := []netip.Addr{netip.MustParseAddr("10.89.0.2"), netip.MustParseAddr("10.89.0.3")}
		if got := aAddrs(t, r); !slices.Equal(got, want) {
			t.Errorf("addresses %v, want %v", got, want)
		}
		for _, rr := range r.Answer {
			if h := rr.Header(); h.Ttl != 600 || h.Name != "web." || h.Class != dns.ClassINET {
				t.Errorf("answer header %v, want web. IN TTL 600", h)
			}
		}
	}
}

func TestLocalNamesIgnoreCaseAndDot(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	for _, name := range []string{"WeB.", "WEB.", "DB.NetName."} {
		r := ask(t, h, false, query(name, dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) == 0 {
			t.Fatalf("no answer for %s", name)
		}
		if got := r.Answer[0].Header().Name; got != dns.Fqdn(name) {
			t.Errorf("answer name %q, want the name as asked, %q", got, dns.Fqdn(name))
		}
	}
}

func TestLocalKnownNameOtherTypesEmpty(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	for _, qtype := range []uint16{dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeSRV, dns.TypeANY, dns.TypePTR} {
		r := ask(t, h, false, query("web.", qtype))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 0 || len(r.Ns) != 0 {
			t.Errorf("%s for a known name: %v, want no records", dns.TypeToString[qtype], r)
		}
	}
	r := ask(t, h, false, query("pending.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if len(r.Answer) != 0 {
		t.Errorf("A for a known name without addresses: %v", r.Answer)
	}
}

func TestLocalPTR(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	for name, want := range map[string]string{
		"2.0.89.10.in-addr.arpa.":   "web.netname.",
		"2.0.89.10.IN-ADDR.ARPA.":   "web.netname.",
		mustReverse(t, "fd00::1:2"): "web6.netname.",
	} {
		r := ask(t, h, false, query(name, dns.TypePTR))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 1 {
			t.Fatalf("PTR %s: %v, want one answer", name, r.Answer)
		}
		ptr, ok := r.Answer[0].(*dns.PTR)
		if !ok || ptr.Ptr != want || ptr.Hdr.Ttl != 600 {
			t.Errorf("PTR %s: %v, want %s TTL 600", name, r.Answer[0], want)
		}
	}
	// Unknown addresses, and names the engine gives that cannot be
	// answered, are not answered locally.
	r := ask(t, h, false, query("3.0.89.10.in-addr.arpa.", dns.TypePTR))
	wantRcode(t, r, dns.RcodeServerFailure) // forwarded, to no upstream
	r = ask(t, h, false, query("99.0.89.10.in-addr.arpa.", dns.TypePTR))
	wantRcode(t, r, dns.RcodeServerFailure)
}

func mustReverse(t *testing.T, addr string) string {
	t.Helper()
	name, err := dns.ReverseAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestReverseAddr(t *testing.T) {
	for name, want := range map[string]string{
		"4.3.2.1.in-addr.arpa":    "1.2.3.4",
		"255.0.0.10.in-addr.arpa": "10.0.0.255",
		"3.2.1.in-addr.arpa":      "",
		"5.4.3.2.1.in-addr.arpa":  "",
		"256.3.2.1.in-addr.arpa":  "",
		"04.3.2.1.in-addr.arpa":   "",
		"x.3.2.1.in-addr.arpa":    "",
		".3.2.1.in-addr.arpa":     "",
		"in-addr.arpa":            "",
		"web":                     "",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa":  "::1",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa":  "4321:0:1:2:3:4:567:89ab",
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa":    "",
		"00.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa": "",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa":  "",
	} {
		addr, ok := reverseAddr(name)
		if want == "" {
			if ok {
				t.Errorf("reverseAddr(%q) = %v, want none", name, addr)
			}
			continue
		}
		if !ok || addr != netip.MustParseAddr(want) {
			t.Errorf("reverseAddr(%q) = %v, %v; want %s", name, addr, ok, want)
		}
	}
}

func TestFormErr(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	none := query("web.", dns.TypeA)
	none.Question = nil
	wantRcode(t, ask(t, h, false, none), dns.RcodeFormatError)

	two := query("web.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "db.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	wantRcode(t, ask(t, h, false, two), dns.RcodeFormatError)
	wantRcode(t, ask(t, h, true, two), dns.RcodeFormatError)
}

func TestOtherOpcodeNotImplemented(t *testing.T) {
	h := NewHandler(Config{Names: testNames(), Logger: quietLogger()})
	m := query("web.", dns.TypeA)
	m.Opcode = dns.OpcodeUpdate
	wantRcode(t, ask(t, h, false, m), dns.RcodeNotImplemented)
}

func TestUnknownNameWithoutUpstreamsServfail(t *testing.T) {
	for _, cfg := range []Config{{Names: testNames()}, {}} {
		cfg.Logger = quietLogger()
		h := NewHandler(cfg)
		wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeServerFailure)
		// Names are only the engine's in class IN.
		chaos := query("web.", dns.TypeA)
		chaos.Question[0].Qclass = dns.ClassCHAOS
		wantRcode(t, ask(t, h, false, chaos), dns.RcodeServerFailure)
	}
}

// upstream is a resolver a test starts on 127.0.0.1, UDP and TCP on one
// port, answering with answer.
type upstream struct {
	addr netip.AddrPort

	mu   sync.Mutex
	seen []string // the protocol of each query, in order
}

func (u *upstream) protocols() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

func startUpstream(t *testing.T, answer func(network string, r *dns.Msg) *dns.Msg) *upstream {
	t.Helper()
	u := &upstream{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		network := "udp"
		if isTCP(w) {
			network = "tcp"
		}
		u.mu.Lock()
		u.seen = append(u.seen, network)
		u.mu.Unlock()
		if m := answer(network, r); m != nil {
			w.WriteMsg(m)
		}
	})
	udp, tcp := loopbackPair(t, "127.0.0.1")
	u.addr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, srv := range []*dns.Server{{PacketConn: udp, Handler: h}, {Listener: tcp, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("start the test upstream: %v", err)
		}
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return u
}

// loopbackPair listens on UDP and TCP on one free port of ip.
func loopbackPair(t *testing.T, ip string) (*net.UDPConn, *net.TCPListener) {
	t.Helper()
	for range 20 {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatalf("listen on udp %s: %v", ip, err)
		}
		tcp, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.ParseIP(ip), Port: udp.LocalAddr().(*net.UDPAddr).Port})
		if err != nil {
			udp.Close()
			continue
		}
		return udp, tcp
	}
	t.Fatalf("no port of %s free on both UDP and TCP", ip)
	return nil, nil
}

// zone answers from a map of names to addresses, NXDOMAIN for others.
func zone(records map[string][]string) func(string, *dns.Msg) *dns.Msg {
	return func(_ string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		addrs, ok := records[r.Question[0].Name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			return m
		}
		if r.Question[0].Qtype != dns.TypeA {
			return m
		}
		for _, a := range addrs {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A:   net.ParseIP(a),
			})
		}
		return m
	}
}

var testZone = map[string][]string{
	"example.test.": {"192.0.2.1"},
	"many.test.":    manyAddrs(60),
}

func manyAddrs(n int) []string {
	var addrs []string
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("198.51.100.%d", i+1))
	}
	return addrs
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	udp, tcp := loopbackPair(t, "127.0.0.1")
	addr := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	udp.Close()
	tcp.Close()
	return addr
}

func TestForwardUDP(t *testing.T) {
	up := startUpstream(t, zone(testZone))
	h := NewHandler(Config{Names: testNames(), Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()})
	r := ask(t, h, false, query("example.test.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if got := aAddrs(t, r); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Errorf("forwarded answer %v, want 192.0.2.1", got)
	}
	if !r.Authoritative || r.Answer[0].Header().Ttl != 30 {
		t.Errorf("the upstream's answer was not passed on as it came: %v", r)
	}
	wantRcode(t, ask(t, h, false, query("nowhere.test.", dns.TypeA)), dns.RcodeNameError)
	if got := up.protocols(); !slices.Equal(got, []string{"udp", "udp"}) {
		t.Errorf("upstream saw %v, want two UDP queries", got)
	}
}

func TestForwardTCP(t *testing.T) {
	up := startUpstream(t, zone(testZone))
	h := NewHandler(Config{Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()})
	r := ask(t, h, true, query("many.test.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if len(r.Answer) != 60 || r.Truncated {
		t.Errorf("%d answers over TCP (truncated %v), want 60", len(r.Answer), r.Truncated)
	}
	if got := up.protocols(); !slices.Equal(got, []string{"tcp"}) {
		t.Errorf("upstream saw %v, want one TCP query", got)
	}
}

func TestForwardTruncatedRetriesOverTCP(t *testing.T) {
	full := zone(testZone)
	up := startUpstream(t, func(network string, r *dns.Msg) *dns.Msg {
		m := full(network, r)
		if network == "udp" {
			m.Answer = nil
			m.Truncated = true
		}
		return m
	})
	h := NewHandler(Config{Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()})
	r := ask(t, h, false, query("example.test.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if r.Truncated || len(r.Answer) != 1 {
		t.Errorf("reply %v, want the full answer from TCP", r)
	}
	if got := up.protocols(); !slices.Equal(got, []string{"udp", "tcp"}) {
		t.Errorf("upstream saw %v, want UDP then TCP", got)
	}

	// An answer too large for the client's UDP buffer comes truncated,
	// with TC, for the client to ask over TCP.
	r = ask(t, h, false, query("many.test.", dns.TypeA))
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 60 {
		t.Errorf("reply with %d answers, truncated %v; want some of 60, truncated", len(r.Answer), r.Truncated)
	}
	// With EDNS0 and room enough, all of it.
	q := query("many.test.", dns.TypeA)
	q.SetEdns0(4096, false)
	r = ask(t, h, false, q)
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("reply with %d answers, truncated %v; want 60 with a 4096-byte EDNS0 buffer", len(r.Answer), r.Truncated)
	}
}

func TestLocalAnswerTruncatedForUDP(t *testing.T) {
	var addrs []netip.Addr
	for i := range 100 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 89, 1, byte(i)}))
	}
	h := NewHandler(Config{Names: fakeNames{v4: map[string][]netip.Addr{"svc": addrs}}, Logger: quietLogger()})
	r := ask(t, h, false, query("svc.", dns.TypeA))
	if !r.Truncated || len(r.Answer) == 0 {
		t.Errorf("UDP reply with %d answers, truncated %v; want truncated", len(r.Answer), r.Truncated)
	}
	r = ask(t, h, true, query("svc.", dns.TypeA))
	if r.Truncated || len(r.Answer) != 100 {
		t.Errorf("TCP reply with %d answers, truncated %v; want 100", len(r.Answer), r.Truncated)
	}
}

func TestUpstreamDownServfail(t *testing.T) {
	h := NewHandler(Config{Upstreams: []netip.AddrPort{closedPort(t), closedPort(t)}, Logger: quietLogger()})
	for _, tcp := range []bool{false, true} {
		wantRcode(t, ask(t, h, tcp, query("example.test.", dns.TypeA)), dns.RcodeServerFailure)
	}
}

func TestUpstreamSilentTimesOut(t *testing.T) {
	// A socket that takes queries and never answers.
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	up := startUpstream(t, zone(testZone))
	h := NewHandler(Config{
		Upstreams: []netip.AddrPort{silent.LocalAddr().(*net.UDPAddr).AddrPort(), up.addr},
		Logger:    quietLogger(),
	})
	h.timeout = 200 * time.Millisecond
	start := time.Now()
	r := ask(t, h, false, query("example.test.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if len(r.Answer) != 1 {
		t.Errorf("reply %v, want the second upstream's answer", r)
	}
	if d := time.Since(start); d < h.timeout || d > 10*h.timeout {
		t.Errorf("took %v with a silent first upstream and a timeout of %v", d, h.timeout)
	}
}

func TestUpstreamFailureTriesNext(t *testing.T) {
	failing := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg {
		return new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	})
	refusing := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg {
		return new(dns.Msg).SetRcode(r, dns.RcodeRefused)
	})
	good := startUpstream(t, zone(testZone))
	h := NewHandler(Config{
		Upstreams: []netip.AddrPort{closedPort(t), failing.addr, refusing.addr, good.addr},
		Logger:    quietLogger(),
	})
	r := ask(t, h, false, query("example.test.", dns.TypeA))
	wantRcode(t, r, dns.RcodeSuccess)
	if len(r.Answer) != 1 {
		t.Errorf("reply %v, want the last upstream's answer", r)
	}

	// None better: the last failure is the reply.
	h = NewHandler(Config{Upstreams: []netip.AddrPort{failing.addr, refusing.addr}, Logger: quietLogger()})
	wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeRefused)
}

func TestUpstreamAnswerForAnotherQuestionIgnored(t *testing.T) {
	liar := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(r)
		m.Question[0].Name = "other.test."
		return m
	})
	h := NewHandler(Config{Upstreams: []netip.AddrPort{liar.addr}, Logger: quietLogger()})
	wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeServerFailure)
}

func TestForwardLimit(t *testing.T) {
	up := startUpstream(t, zone(testZone))
	h := NewHandler(Config{Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()})
	for range maxForwards {
		h.forwards <- struct{}{}
	}
	wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeServerFailure)
	// Local names are answered still.
	h.names = testNames()
	wantRcode(t, ask(t, h, false, query("web.", dns.TypeA)), dns.RcodeSuccess)
	if got := up.protocols(); len(got) != 0 {
		t.Errorf("upstream saw %v beyond the limit", got)
	}
	<-h.forwards
	wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeSuccess)
}

func TestForwardEndsWhenCancelled(t *testing.T) {
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addr := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	h := newHandler(ctx, Config{Upstreams: []netip.AddrPort{addr, addr}, Logger: quietLogger()})
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	wantRcode(t, ask(t, h, false, query("example.test.", dns.TypeA)), dns.RcodeServerFailure)
	if d := time.Since(start); d > upstreamTimeout {
		t.Errorf("a cancelled forward took %v", d)
	}
}
