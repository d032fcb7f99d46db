package pid1

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// testACK is an ACK for 192.0.2.50 with mods applied after the defaults.
func testACK(t testing.TB, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 0, 1}),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 50)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	return m.ToBytes()
}

func TestParseLease(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	server := ip("192.0.2.1")
	mask24 := dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
	lease := func(s string) dhcpv4.Modifier {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(d))
	}
	tests := []struct {
		name    string
		packet  []byte
		want    Lease
		wantErr bool
	}{
		{"everything", testACK(t, mask24, lease("1h"),
			dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 0, 2, 1))),
			dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 0, 2, 53), net.IPv4(0, 0, 0, 0), net.IPv4(198, 51, 100, 53))),
			dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"corp.test", "test."}})),
			dhcpv4.WithOption(dhcpv4.OptDomainName("ignored.test")),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xdc}),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(20*time.Minute)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(40*time.Minute))),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Router: ip("192.0.2.1"),
				DNS: []netip.Addr{ip("192.0.2.53"), ip("198.51.100.53")}, Search: []string{"corp.test", "test"},
				MTU: 1500, Server: server, Time: time.Hour, T1: 20 * time.Minute, T2: 40 * time.Minute}, false},
		{"defaults: classful prefix, lease time, T1, T2", testACK(t),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: server, Time: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second}, false},
		{"class A without mask", testACK(t, dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15))),
			Lease{Addr: netip.MustParsePrefix("10.0.2.15/8"), Server: server, Time: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second}, false},
		{"T1 after T2 and T2 after the lease fall back", testACK(t, mask24, lease("100s"),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(95*time.Second)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(200*time.Second))),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: server, Time: 100 * time.Second, T1: 50 * time.Second, T2: 87500 * time.Millisecond}, false},
		{"infinite lease", testACK(t, mask24, dhcpv4.WithGeneric(dhcpv4.OptionIPAddressLeaseTime, []byte{0xff, 0xff, 0xff, 0xff})),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: server, Forever: true}, false},
		{"domain name of several names: split, bad and repeated ones dropped, no line injected", testACK(t, mask24,
			dhcpv4.WithOption(dhcpv4.OptDomainName("a.test b.test\nnameserver 6.6.6.6 -bad.test a.test"))),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Server: server, Time: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second,
				Search: []string{"a.test", "b.test", "nameserver"}}, false},
		{"router equal to the address, tiny MTU, loopback DNS left out", testACK(t, mask24,
			dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 0, 2, 50), net.IPv4(192, 0, 2, 254))),
			dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(127, 0, 0, 1))),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0, 10})),
			Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Router: ip("192.0.2.254"), Server: server, Time: time.Hour, T1: 30 * time.Minute, T2: 52*time.Minute + 30*time.Second}, false},
		{"no address", testACK(t, dhcpv4.WithYourIP(net.IPv4zero)), Lease{}, true},
		{"broadcast address", testACK(t, dhcpv4.WithYourIP(net.IPv4bcast)), Lease{}, true},
		{"multicast address", testACK(t, dhcpv4.WithYourIP(net.IPv4(224, 0, 0, 1))), Lease{}, true},
		{"zero mask", testACK(t, dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(0, 32)))), Lease{}, true},
		{"non-contiguous mask", testACK(t, dhcpv4.WithGeneric(dhcpv4.OptionSubnetMask, []byte{255, 0, 255, 0})), Lease{}, true},
		{"zero lease time", testACK(t, dhcpv4.WithGeneric(dhcpv4.OptionIPAddressLeaseTime, []byte{0, 0, 0, 0})), Lease{}, true},
		{"short lease time option", testACK(t, dhcpv4.WithGeneric(dhcpv4.OptionIPAddressLeaseTime, []byte{0, 1})), Lease{}, true},
		{"an offer", testACK(t, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)), Lease{}, true},
		{"garbage", []byte("not a DHCP packet"), Lease{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLease(tt.packet)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadLease) {
					t.Errorf("error %v is not ErrBadLease", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLeaseResolvConf(t *testing.T) {
	l := Lease{DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")}, Search: []string{"corp.test", "test"}}
	want := "# berth: from the DHCP lease of eth0\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.test test\n"
	if got := string(l.ResolvConf("eth0")); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string((Lease{}).ResolvConf("eth0")); got != "# berth: from the DHCP lease of eth0\n" {
		t.Errorf("empty lease: %q", got)
	}
}

// FuzzParseLease: whatever a server sends, a lease that parses is one pid1
// can apply, and its resolv.conf has only nameserver and search lines.
func FuzzParseLease(f *testing.F) {
	f.Add(testACK(f))
	f.Add(testACK(f, dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 0, 2, 1))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 0, 2, 53))),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"corp.test"}})),
		dhcpv4.WithOption(dhcpv4.OptDomainName("a.test b.test")),
		dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xdc}),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Minute)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(20*time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(40*time.Second))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, packet []byte) {
		l, err := ParseLease(packet)
		if err != nil {
			if !errors.Is(err, ErrBadLease) {
				t.Fatalf("error %v is not ErrBadLease", err)
			}
			return
		}
		if !l.Addr.IsValid() || !l.Addr.Addr().Is4() || l.Addr.Bits() < 1 || l.Addr.Bits() > 32 {
			t.Fatalf("address %v", l.Addr)
		}
		if l.Router.IsValid() && (!l.Router.Is4() || l.Router == l.Addr.Addr()) {
			t.Fatalf("router %v for %v", l.Router, l.Addr)
		}
		if len(l.DNS) > maxNameservers || len(l.Search) > maxSearch {
			t.Fatalf("%d name servers, %d search domains", len(l.DNS), len(l.Search))
		}
		if l.MTU != 0 && l.MTU < 68 {
			t.Fatalf("MTU %d", l.MTU)
		}
		if l.Forever {
			if l.Time != 0 || l.T1 != 0 || l.T2 != 0 {
				t.Fatalf("infinite lease with times %v %v %v", l.Time, l.T1, l.T2)
			}
		} else if !(0 < l.T1 && l.T1 <= l.T2 && l.T2 <= l.Time) {
			t.Fatalf("times T1 %v T2 %v lease %v", l.T1, l.T2, l.Time)
		}
		conf := l.ResolvConf("eth0")
		lines := strings.Split(strings.TrimSuffix(string(conf), "\n"), "\n")
		for _, line := range lines[1:] {
			if !strings.HasPrefix(line, "nameserver ") && !strings.HasPrefix(line, "search ") {
				t.Fatalf("resolv.conf line %q", line)
			}
			if strings.HasPrefix(line, "search ") && len(line) > maxSearchChars {
				t.Fatalf("search line of %d bytes", len(line))
			}
		}
		if bytes.ContainsAny(conf, "\x00\r\t") {
			t.Fatalf("resolv.conf with control bytes: %q", conf)
		}
	})
}
