package engine

import (
	"net/netip"
	"slices"
	"testing"
)

// TestRegistryInfo: /info's RegistryConfig names the insecure registries
// and mirrors of daemon.json as dockerd does.
func TestRegistryInfo(t *testing.T) {
	sc := registryInfo([]string{"10.0.2.2:5000", "192.168.0.0/16", "192.168.1.2/16"}, []string{"https://mirror.example/"})
	if ic := sc.IndexConfigs["10.0.2.2:5000"]; ic == nil || ic.Secure || ic.Official {
		t.Errorf("insecure index = %+v", ic)
	}
	if hub := sc.IndexConfigs["docker.io"]; hub == nil || !hub.Secure || !hub.Official || !slices.Equal(hub.Mirrors, []string{"https://mirror.example/"}) {
		t.Errorf("docker.io index = %+v", hub)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}
	if !slices.Equal(sc.InsecureRegistryCIDRs, want) {
		t.Errorf("CIDRs = %v, want %v", sc.InsecureRegistryCIDRs, want)
	}
	if !slices.Equal(sc.Mirrors, []string{"https://mirror.example/"}) {
		t.Errorf("mirrors = %v", sc.Mirrors)
	}
	if empty := registryInfo(nil, nil); len(empty.IndexConfigs) != 1 || len(empty.InsecureRegistryCIDRs) != 1 {
		t.Errorf("defaults = %+v", empty)
	}
}
