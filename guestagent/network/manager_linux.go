//go:build linux

package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// Options of network create the bridge driver reads, as dockerd names them.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Root is the directory networks.json is kept in.
	Root string
	// Default is the default bridge; nil when the engine runs without one
	// (then "bridge" is not listed, as with dockerd --bridge=none).
	Default *Bridge
	// DefaultName names the engine for the ids of host and none and for
	// its isolation table ("berth0").
	DefaultName string
	// Pools are where subnets of new networks come from; nil: DefaultPools.
	Pools []Pool
	// MTU of new bridges; 0: 1500.
	MTU    int
	Logger *slog.Logger
}

// CreateRequest is what network create asks for.
type CreateRequest struct {
	Name       string
	Driver     string
	Subnet     netip.Prefix
	Gateway    netip.Addr
	IPRange    netip.Prefix
	Internal   bool
	Attachable bool
	Options    map[string]string
	Labels     map[string]string
}

// Manager owns the engine's networks: the predefined ones and the
// user-defined bridges, each with its Linux bridge and nftables table,
// kept in Root/networks.json so they come back after a restart, and the
// isolation between them.
type Manager struct {
	cfg ManagerConfig
	log *slog.Logger
	iso *isolation

	mu   sync.Mutex
	nets map[string]*managed // by id
}

type managed struct {
	def Network
	br  *Bridge // bridge networks
}

// OpenManager loads the user-defined networks and sets their bridges up.
func OpenManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultName == "" {
		cfg.DefaultName = "berth0"
	}
	if cfg.Pools == nil {
		cfg.Pools = DefaultPools()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, nets: map[string]*managed{}}
	if cfg.Default != nil {
		b := cfg.Default
		m.nets[b.cfg.NetworkID] = &managed{br: b, def: Network{
			ID: b.cfg.NetworkID, Name: "bridge", Driver: "bridge", Subnet: b.Subnet(), Gateway: b.Gateway(),
			Bridge: b.Name(), Predefined: true,
			Options: map[string]string{
				"com.docker.network.bridge.default_bridge":       "true",
				"com.docker.network.bridge.enable_icc":           "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true",
				"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
				OptBridgeName: b.Name(),
				OptMTU:        strconv.Itoa(b.MTU()),
			},
		}}
	}
	for _, n := range []Network{{Name: "host", Driver: "host"}, {Name: "none", Driver: "null"}} {
		n.ID = stableID(cfg.DefaultName, n.Name)
		n.Predefined = true
		m.nets[n.ID] = &managed{def: n}
	}
	if cfg.Root != "" {
		if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
			return nil, fmt.Errorf("network store %s: %w", cfg.Root, err)
		}
		defs, err := loadNetworks(m.file())
		if err != nil {
			return nil, err
		}
		for _, d := range defs {
			br, err := m.openBridge(d)
			if err != nil {
				// The definition is kept: the network shows, and its
				// containers fail to start with this reason.
				m.log.Warn("restoring network", "network", d.Name, "err", err)
			}
			m.nets[d.ID] = &managed{def: d, br: br}
		}
	}
	iso, err := newIsolation("berth_iso_" + cfg.DefaultName)
	if err != nil {
		m.closeBridges()
		return nil, err
	}
	m.iso = iso
	m.mu.Lock()
	err = m.isolateLocked()
	m.mu.Unlock()
	if err != nil {
		m.closeBridges()
		_ = iso.remove()
		return nil, err
	}
	return m, nil
}

func stableID(engine, name string) string {
	sum := sha256.Sum256([]byte("berth network " + engine + " " + name))
	return hex.EncodeToString(sum[:])
}

func (m *Manager) file() string { return filepath.Join(m.cfg.Root, "networks.json") }

func (m *Manager) openBridge(d Network) (*Bridge, error) {
	mtu := m.cfg.MTU
	if v, ok := d.Options[OptMTU]; ok {
		mtu, _ = strconv.Atoi(v)
	}
	b, err := NewBridge(Config{
		Name: d.Name, Bridge: d.Bridge, Gateway: netip.PrefixFrom(d.Gateway, d.Subnet.Bits()),
		MTU: mtu, NetworkID: d.ID, Internal: d.Internal, Logger: m.log,
	})
	if err == nil && d.IPRange.IsValid() {
		b.limitTo(d.IPRange)
	}
	return b, err
}

func (m *Manager) isolateLocked() error {
	var names []string
	for _, n := range m.nets {
		if n.br != nil {
			names = append(names, n.br.Name())
		}
	}
	sort.Strings(names)
	return m.iso.set(names)
}

// List returns every network, the predefined ones first.
func (m *Manager) List() []Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Network, 0, len(m.nets))
	for _, n := range m.nets {
		out = append(out, n.def)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Predefined != out[j].Predefined {
			return out[i].Predefined
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Find returns the network named nameOrID, or whose id is or starts with
// it, as dockerd looks networks up.
func (m *Manager) Find(nameOrID string) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.findLocked(nameOrID)
	if err != nil {
		return Network{}, err
	}
	return n.def, nil
}

func (m *Manager) findLocked(s string) (*managed, error) {
	if s == "" {
		return nil, NotFoundError{Name: s}
	}
	if n, ok := m.nets[s]; ok {
		return n, nil
	}
	for _, n := range m.nets {
		if n.def.Name == s {
			return n, nil
		}
	}
	var found []*managed
	for id, n := range m.nets {
		if strings.HasPrefix(id, s) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, NotFoundError{Name: s}
	case 1:
		return found[0], nil
	}
	return nil, invalidError{fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix)", s, len(found))}
}

// Create makes a user-defined bridge network.
func (m *Manager) Create(req CreateRequest) (Network, error) {
	if req.Name == "" {
		return Network{}, invalidError{errors.New("network name cannot be empty")}
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null":
		return Network{}, forbiddenError{fmt.Errorf("only one instance of %q network is allowed", req.Driver)}
	default:
		return Network{}, NotFoundError{Name: req.Driver}.plugin()
	}
	if req.Subnet.IsValid() && !req.Subnet.Addr().Is4() || req.Gateway.IsValid() && !req.Gateway.Is4() {
		return Network{}, invalidError{errors.New("IPv6 networks are not supported by this engine")}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		if n.def.Name == req.Name {
			return Network{}, conflictError{fmt.Errorf("network with name %s already exists", req.Name)}
		}
	}
	id := randHex(32)
	d := Network{
		ID: id, Name: req.Name, Driver: "bridge", Created: time.Now().UTC(),
		Internal: req.Internal, Attachable: req.Attachable,
		Options: maps.Clone(req.Options), Labels: maps.Clone(req.Labels),
		Bridge: "br-" + id[:12],
	}
	if d.Options == nil {
		d.Options = map[string]string{}
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	if v := d.Options[OptBridgeName]; v != "" {
		if len(v) > 15 || strings.ContainsAny(v, "/ \t") {
			return Network{}, invalidError{fmt.Errorf("invalid bridge name %q", v)}
		}
		for _, n := range m.nets {
			if n.def.Bridge == v {
				return Network{}, conflictError{fmt.Errorf("bridge name %s is used by network %s", v, n.def.Name)}
			}
		}
		d.Bridge = v
	}
	if v, ok := d.Options[OptMTU]; ok {
		if mtu, err := strconv.Atoi(v); err != nil || mtu < 68 || mtu > 65535 {
			return Network{}, invalidError{fmt.Errorf("invalid value %q for option %s: an MTU between 68 and 65535 is required", v, OptMTU)}
		}
	}
	taken := m.takenLocked()
	if req.Subnet.IsValid() {
		d.Subnet, d.SubnetChosen = req.Subnet.Masked(), true
		if d.Subnet.Bits() > 30 {
			return Network{}, invalidError{fmt.Errorf("subnet %s is too small: at most /30", req.Subnet)}
		}
		for _, n := range m.nets {
			if n.def.Subnet.IsValid() && n.def.Subnet.Overlaps(d.Subnet) {
				return Network{}, forbiddenError{fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space")}
			}
		}
	} else {
		if req.Gateway.IsValid() || req.IPRange.IsValid() {
			return Network{}, invalidError{errors.New("a gateway or IP range needs a subnet (--subnet)")}
		}
		s, err := NextSubnet(m.cfg.Pools, taken)
		if err != nil {
			return Network{}, forbiddenError{err}
		}
		d.Subnet = s
	}
	if req.IPRange.IsValid() {
		if !d.Subnet.Contains(req.IPRange.Addr()) || req.IPRange.Bits() < d.Subnet.Bits() {
			return Network{}, invalidError{fmt.Errorf("IP range %s is not inside subnet %s", req.IPRange, d.Subnet)}
		}
		d.IPRange = req.IPRange.Masked()
	}
	d.Gateway = d.Subnet.Addr().Next()
	if req.Gateway.IsValid() {
		if !d.Subnet.Contains(req.Gateway) || req.Gateway == d.Subnet.Addr() || req.Gateway == lastAddr(d.Subnet) {
			return Network{}, invalidError{fmt.Errorf("gateway %s is not a host address of subnet %s", req.Gateway, d.Subnet)}
		}
		d.Gateway = req.Gateway
	}
	br, err := m.openBridge(d)
	if err != nil {
		return Network{}, fmt.Errorf("create network %s: %w", d.Name, err)
	}
	m.nets[id] = &managed{def: d, br: br}
	if err := m.saveLocked(); err != nil {
		delete(m.nets, id)
		_ = br.Destroy()
		return Network{}, err
	}
	if err := m.isolateLocked(); err != nil {
		m.log.Warn("network isolation", "err", err)
	}
	return d, nil
}

// takenLocked lists the subnets a new network must not overlap: the
// engine's networks and every route and address of this machine.
func (m *Manager) takenLocked() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range m.nets {
		if n.def.Subnet.IsValid() {
			out = append(out, n.def.Subnet)
		}
	}
	if routes, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			if p, ok := ipNetPrefix(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
				out = append(out, p)
			}
		}
	}
	if addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4); err == nil {
		for _, a := range addrs {
			if p, ok := ipNetPrefix(a.IP, a.Mask); ok {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

func ipNetPrefix(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones := 0
	for _, b := range mask {
		for ; b&0x80 != 0; b <<= 1 {
			ones++
		}
	}
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Remove deletes a user-defined network with no container attached.
func (m *Manager) Remove(nameOrID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.findLocked(nameOrID)
	if err != nil {
		return err
	}
	if n.def.Predefined {
		return forbiddenError{fmt.Errorf("%s is a pre-defined network and cannot be removed", n.def.Name)}
	}
	if n.br != nil && n.br.Endpoints() > 0 {
		return forbiddenError{fmt.Errorf("error while removing network: network %s id %s has active endpoints", n.def.Name, n.def.ID)}
	}
	delete(m.nets, n.def.ID)
	if err := m.saveLocked(); err != nil {
		m.nets[n.def.ID] = n
		return err
	}
	if n.br != nil {
		if err := n.br.Destroy(); err != nil {
			m.log.Warn("removing network bridge", "network", n.def.Name, "err", err)
		}
	}
	if err := m.isolateLocked(); err != nil {
		m.log.Warn("network isolation", "err", err)
	}
	return nil
}

// Attach connects container id (process pid) to network netID.
func (m *Manager) Attach(netID, id string, pid int, o AttachOptions) (*Endpoint, error) {
	m.mu.Lock()
	n, ok := m.nets[netID]
	m.mu.Unlock()
	if !ok {
		return nil, NotFoundError{Name: netID}
	}
	if n.br == nil {
		return nil, fmt.Errorf("network %s has no bridge to attach to (see the engine log)", n.def.Name)
	}
	if o.IP.IsValid() && !n.def.SubnetChosen {
		return nil, invalidError{errors.New("user specified IP address is supported only when connecting to networks with user configured subnets")}
	}
	return n.br.Attach(id, pid, o)
}

// Detach undoes Attach; unknown networks or containers are ignored.
func (m *Manager) Detach(netID, id string) {
	m.mu.Lock()
	n, ok := m.nets[netID]
	m.mu.Unlock()
	if ok && n.br != nil {
		n.br.Detach(id)
	}
}

// Close releases the networks' proxies and nftables tables; the bridges
// stay, as dockerd leaves its bridges.
func (m *Manager) Close() {
	m.closeBridges()
	if m.iso != nil {
		if err := m.iso.remove(); err != nil {
			m.log.Warn("removing isolation table", "err", err)
		}
	}
}

func (m *Manager) closeBridges() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nets {
		if n.br != nil {
			n.br.Close()
		}
	}
}

func (m *Manager) saveLocked() error {
	if m.cfg.Root == "" {
		return nil
	}
	var defs []Network
	for _, n := range m.nets {
		if !n.def.Predefined {
			defs = append(defs, n.def)
		}
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].ID < defs[j].ID })
	b, err := json.MarshalIndent(defs, "", "  ")
	if err != nil {
		return fmt.Errorf("encode networks: %w", err)
	}
	return atomicfile.Write(m.file(), b, 0o600)
}

func loadNetworks(path string) ([]Network, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var defs []Network
	if err := json.Unmarshal(b, &defs); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return defs, nil
}
