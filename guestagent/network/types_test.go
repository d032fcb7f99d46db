package network

import (
	"net/netip"
	"testing"
)

func TestNextSubnet(t *testing.T) {
	pools := DefaultPools()
	taken := []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.18.5.0/24")}
	got, err := NextSubnet(pools, taken)
	if err != nil || got.String() != "172.19.0.0/16" {
		t.Errorf("NextSubnet past 172.17/16 and a route in 172.18: %v %v", got, err)
	}
	small := []Pool{{Base: netip.MustParsePrefix("10.5.0.0/23"), Size: 24}}
	got, err = NextSubnet(small, []netip.Prefix{netip.MustParsePrefix("10.5.0.0/24")})
	if err != nil || got.String() != "10.5.1.0/24" {
		t.Errorf("second /24 of a /23: %v %v", got, err)
	}
	if _, err := NextSubnet(small, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); err == nil {
		t.Error("a pool covered by a route gave a subnet")
	}
	// A default route (0/0) is not a reason to skip anything: callers
	// leave it out, and an invalid prefix is ignored.
	if got, err := NextSubnet(small, []netip.Prefix{{}}); err != nil || got.String() != "10.5.0.0/24" {
		t.Errorf("with an invalid taken prefix: %v %v", got, err)
	}
}

func TestValidatePool(t *testing.T) {
	for _, tt := range []struct {
		p  Pool
		ok bool
	}{
		{Pool{netip.MustParsePrefix("10.10.0.0/16"), 24}, true},
		{Pool{netip.MustParsePrefix("10.10.0.0/16"), 8}, false},
		{Pool{netip.MustParsePrefix("10.10.0.0/16"), 31}, false},
		{Pool{netip.MustParsePrefix("fd00::/8"), 64}, false},
		{Pool{}, false},
	} {
		if err := ValidatePool(tt.p); (err == nil) != tt.ok {
			t.Errorf("ValidatePool(%v) = %v, want ok=%v", tt.p, err, tt.ok)
		}
	}
}

func FuzzNextSubnet(f *testing.F) {
	f.Add("10.0.0.0/8", 24, "10.0.0.0/16")
	f.Add("192.168.0.0/16", 20, "192.168.16.0/20")
	f.Fuzz(func(t *testing.T, base string, size int, taken string) {
		b, err := netip.ParsePrefix(base)
		if err != nil {
			return
		}
		tk, _ := netip.ParsePrefix(taken)
		p := Pool{Base: b, Size: size}
		got, err := NextSubnet([]Pool{p}, []netip.Prefix{tk})
		if err != nil {
			return
		}
		if ValidatePool(p) != nil {
			t.Fatalf("subnet %v from an invalid pool %v", got, p)
		}
		if got.Bits() != size || !p.Base.Masked().Contains(got.Addr()) || tk.IsValid() && tk.Addr().Is4() && tk.Overlaps(got) {
			t.Fatalf("NextSubnet(%v, %v) = %v", p, tk, got)
		}
	})
}
