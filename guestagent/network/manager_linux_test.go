//go:build linux

package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network manager tests create bridges and nftables tables: they need root")
	}
}

func hasTable(t *testing.T, name string) bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ts {
		if tb.Name == name {
			return true
		}
	}
	return false
}

func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// TestManagerLifecycle creates networks (a pool subnet and a chosen one),
// refuses duplicates and overlaps, keeps them across a reopen, and
// removes them with their bridges and tables.
func TestManagerLifecycle(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	name := fmt.Sprintf("bm%d", os.Getpid()%100000)
	pools := []Pool{{Base: netip.MustParsePrefix(fmt.Sprintf("10.196.%d.0/24", os.Getpid()%250)), Size: 26}}
	cfg := ManagerConfig{Root: root, DefaultName: name, Pools: pools}
	m, err := OpenManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { m.Close() }()
	if !hasTable(t, "berth_iso_"+name) {
		t.Error("no isolation table")
	}
	a, err := m.Create(CreateRequest{Name: "a", Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(a.ID) })
	if a.Subnet != netip.PrefixFrom(pools[0].Base.Addr(), 26) || a.Gateway != a.Subnet.Addr().Next() || !linkExists(a.Bridge) || !hasTable(t, tableName(a.Bridge)) {
		t.Errorf("network a: %+v (bridge there: %v)", a, linkExists(a.Bridge))
	}
	chosen := netip.PrefixFrom(pools[0].Base.Addr(), 26)
	if _, err := m.Create(CreateRequest{Name: "b", Subnet: chosen}); err == nil {
		t.Error("a subnet overlapping network a was accepted")
	}
	if _, err := m.Create(CreateRequest{Name: "a"}); err == nil {
		t.Error("a duplicate name was accepted")
	}
	if _, err := m.Create(CreateRequest{Name: "c", Driver: "overlay"}); err == nil || err.Error() != `plugin "overlay" not found` {
		t.Errorf("unknown driver: %v", err)
	}
	b, err := m.Create(CreateRequest{Name: "b", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove(b.ID) })
	if b.Subnet.Overlaps(a.Subnet) {
		t.Errorf("b %v overlaps a %v", b.Subnet, a.Subnet)
	}
	if got, err := m.Find(a.ID[:6]); err != nil || got.Name != "a" {
		t.Errorf("Find by id prefix: %v %v", got, err)
	}
	var nf NotFoundError
	if _, err := m.Find("zzz"); !errors.As(err, &nf) {
		t.Errorf("Find of a missing network: %v", err)
	}
	if err := m.Remove("host"); err == nil {
		t.Error("removing host was accepted")
	}

	// Reopen: the networks come back, with the same bridges.
	m.Close()
	if m, err = OpenManager(cfg); err != nil {
		t.Fatal(err)
	}
	got, err := m.Find("a")
	if err != nil || got.ID != a.ID || got.Subnet != a.Subnet || got.Labels["k"] != "v" {
		t.Errorf("after reopen: %+v %v", got, err)
	}
	if got, err := m.Find("b"); err != nil || !got.Internal {
		t.Errorf("internal after reopen: %+v %v", got, err)
	}
	if err := m.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if linkExists(a.Bridge) || hasTable(t, tableName(a.Bridge)) {
		t.Error("the bridge or table of a removed network is left")
	}
	if err := m.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if n := len(m.List()); n != 2 {
		t.Errorf("after removing both: %d networks, want host and none", n)
	}
}
