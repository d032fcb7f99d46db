//go:build linux

package engine

import (
	"net/netip"
	"strings"
	"testing"

	mnetwork "github.com/moby/moby/api/types/network"

	"github.com/berthdesktop/berth/guestagent/network"
)

func dnsCtr(id, name string, nets map[string]*mnetwork.EndpointSettings) *ctr {
	return &ctr{m: meta{ID: id, Name: "/" + name, Nets: nets}}
}

func TestDNSTable(t *testing.T) {
	gw := netip.MustParseAddr("10.0.2.2")
	tb := newDNSTable(gw)
	front := network.Network{ID: "f1", Name: "front", Driver: "bridge"}
	back := network.Network{ID: "b1", Name: "back", Driver: "bridge"}
	def := network.Network{ID: "d1", Name: "bridge", Driver: "bridge", Predefined: true}
	idA := strings.Repeat("a", 64)
	idB := strings.Repeat("b", 64)
	idC := strings.Repeat("c", 64)
	a := dnsCtr(idA, "Web", map[string]*mnetwork.EndpointSettings{"front": {Aliases: []string{"www"}}})
	b := dnsCtr(idB, "client", map[string]*mnetwork.EndpointSettings{"front": {Links: []string{"Web:site"}}, "back": {}})
	c := dnsCtr(idC, "other", map[string]*mnetwork.EndpointSettings{"back": {}})
	ip := netip.MustParseAddr
	tb.add(front, a, &network.Endpoint{IP: ip("172.18.0.2")})
	tb.add(front, b, &network.Endpoint{IP: ip("172.18.0.3")})
	tb.add(back, b, &network.Endpoint{IP: ip("172.19.0.3")})
	tb.add(back, c, &network.Endpoint{IP: ip("172.19.0.4")})
	tb.add(def, c, &network.Endpoint{IP: ip("172.17.0.4")})

	nb := tb.namesFor(idB)
	for _, tt := range []struct {
		q    string
		want string
	}{
		{"web", "172.18.0.2"},
		{"WEB.", "172.18.0.2"},
		{"www", "172.18.0.2"},
		{"web.front", "172.18.0.2"},
		{idA[:12], "172.18.0.2"},
		{"site", "172.18.0.2"},
		{"other", "172.19.0.4"},
		{"client", "172.18.0.3 172.19.0.3"},
		{"host.docker.internal", "10.0.2.2"},
		{"nobody", ""},
		{"web.back", ""},
	} {
		addrs, ok := nb.LookupIPv4(tt.q)
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tt.want || ok != (tt.want != "") {
			t.Errorf("LookupIPv4(%q) = %v %v, want %q", tt.q, got, ok, tt.want)
		}
	}
	// Web is not on back and the default bridge has no names: other's
	// name is unknown to Web.
	if addrs, ok := tb.namesFor(idA).LookupIPv4("other"); ok {
		t.Errorf("web resolved other across networks: %v", addrs)
	}
	if name, ok := nb.LookupPTR(ip("172.19.0.4")); !ok || name != "other.back" {
		t.Errorf("PTR: %q %v", name, ok)
	}
	if addr, id, ok := tb.linkAddr("d1", "other"); !ok || addr != ip("172.17.0.4") || id != idC {
		t.Errorf("linkAddr: %v %v %v", addr, id, ok)
	}
	tb.remove("f1", idA)
	if _, ok := nb.LookupIPv4("web"); ok {
		t.Error("web still resolves after its endpoint went")
	}
	tb.removeContainer(idB)
	if _, ok := nb.LookupIPv4("other"); ok {
		t.Error("a removed container still resolves names")
	}
}

func TestParseLink(t *testing.T) {
	for _, tt := range []struct{ in, target, alias string }{
		{"db", "db", "db"},
		{"db:data", "db", "data"},
		{"/db:/web/data", "db", "data"},
	} {
		target, alias, err := parseLink(tt.in)
		if err != nil || target != tt.target || alias != tt.alias {
			t.Errorf("parseLink(%q) = %q %q %v", tt.in, target, alias, err)
		}
	}
	if _, _, err := parseLink(":x"); err == nil {
		t.Error("a link without a container was accepted")
	}
}

func FuzzParseLink(f *testing.F) {
	for _, s := range []string{"db", "db:alias", "/db:/web/alias", ":", "a:b:c", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, alias, err := parseLink(s)
		if err != nil {
			return
		}
		if target == "" || alias == "" || strings.HasPrefix(target, "/") || strings.Contains(alias, "/") {
			t.Fatalf("parseLink(%q) = %q, %q", s, target, alias)
		}
		if envName(alias) == "" || strings.ToUpper(envName(alias)) != envName(alias) {
			t.Fatalf("envName(%q) = %q", alias, envName(alias))
		}
	})
}
