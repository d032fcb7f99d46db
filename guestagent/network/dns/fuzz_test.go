package dns

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary packets that unpack to the handler, with
// names and no upstreams: it must not panic, and must reply once, with the
// query's ID, in a message that packs.
func FuzzHandler(f *testing.F) {
	seed := func(m *dns.Msg) {
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	seed(query("web.", dns.TypeA))
	seed(query("WEB.NETNAME.", dns.TypeAAAA))
	seed(query("2.0.89.10.in-addr.arpa.", dns.TypePTR))
	ip6, err := dns.ReverseAddr("fd00::1:2")
	if err != nil {
		f.Fatal(err)
	}
	seed(query(ip6, dns.TypePTR))
	seed(query("99.0.89.10.in-addr.arpa.", dns.TypePTR))
	seed(query("example.test.", dns.TypeMX))
	edns := query("svc.", dns.TypeA)
	edns.SetEdns0(1232, true)
	seed(edns)
	two := query("web.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "db.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	seed(two)
	f.Add([]byte{0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

	names := testNames()
	for i := range 100 {
		names.v4["svc"] = append(names.v4["svc"], netip.AddrFrom4([4]byte{10, 89, 1, byte(i)}))
	}
	h := NewHandler(Config{Names: names, Logger: quietLogger()})
	f.Fuzz(func(t *testing.T, packet []byte) {
		q := new(dns.Msg)
		if err := q.Unpack(packet); err != nil {
			return
		}
		for _, tcp := range []bool{false, true} {
			w := &recorder{tcp: tcp}
			h.ServeDNS(w, q)
			if len(w.msgs) != 1 {
				t.Fatalf("%d replies, want 1", len(w.msgs))
			}
			r := w.msgs[0]
			if r.Id != q.Id {
				t.Fatalf("reply ID %d, query's %d", r.Id, q.Id)
			}
			if _, err := r.Pack(); err != nil {
				t.Fatalf("the reply does not pack: %v\n%v", err, r)
			}
		}
	})
}
