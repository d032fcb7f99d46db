//go:build linux

package engine

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/berthdesktop/berth/guestagent/network"
)

// dnsTable is the engine's name index of running containers per
// network, kept under its own lock so that the embedded DNS servers and
// a starting container's /etc/hosts never wait on a container's lock.
type dnsTable struct {
	mu     sync.Mutex
	hostGW netip.Addr
	nets   map[string]*dnsNet // by network id
}

type dnsNet struct {
	name        string
	userDefined bool
	eps         map[string]*dnsEntry // by container id
}

type dnsEntry struct {
	id    string
	name  string   // container name without "/"
	names []string // lower-cased names the DNS answers on this network
	ip    netip.Addr
	// links are alias -> container name of the endpoint's links.
	links map[string]string
	// ports and env are the container's exposed ports ("80/tcp") and
	// environment, for the variables of legacy links.
	ports []string
	env   []string
}

func newDNSTable(hostGW netip.Addr) *dnsTable {
	return &dnsTable{hostGW: hostGW, nets: map[string]*dnsNet{}}
}

// add records container c's endpoint ep on network n. Called with c.mu
// held (only c's own fields are read).
func (t *dnsTable) add(n network.Network, c *ctr, ep *network.Endpoint) {
	name := strings.TrimPrefix(c.m.Name, "/")
	en := &dnsEntry{id: c.m.ID, name: name, ip: ep.IP, links: map[string]string{}}
	if c.m.Config != nil {
		for p := range c.m.Config.ExposedPorts {
			en.ports = append(en.ports, p.String())
		}
		en.env = append(en.env, c.m.Config.Env...)
	}
	en.names = append(en.names, strings.ToLower(name), c.m.ID[:12])
	if s := c.m.Nets[n.Name]; s != nil {
		for _, a := range s.Aliases {
			en.names = append(en.names, strings.ToLower(a))
		}
		for _, l := range s.Links {
			if target, alias, err := parseLink(l); err == nil {
				en.links[strings.ToLower(alias)] = target
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	dn := t.nets[n.ID]
	if dn == nil {
		dn = &dnsNet{name: n.Name, userDefined: n.UserDefined(), eps: map[string]*dnsEntry{}}
		t.nets[n.ID] = dn
	}
	dn.eps[c.m.ID] = en
}

// removeContainer forgets every endpoint of container id.
func (t *dnsTable) removeContainer(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for nid, dn := range t.nets {
		delete(dn.eps, id)
		if len(dn.eps) == 0 {
			delete(t.nets, nid)
		}
	}
}

// remove forgets container id's endpoint on network netID.
func (t *dnsTable) remove(netID, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if dn := t.nets[netID]; dn != nil {
		delete(dn.eps, id)
		if len(dn.eps) == 0 {
			delete(t.nets, netID)
		}
	}
}

// find returns the entry on dn of the container named ref (a name or an
// id prefix). Called with t.mu held.
func (dn *dnsNet) find(ref string) *dnsEntry {
	ref = strings.TrimPrefix(ref, "/")
	for _, en := range dn.eps {
		if en.name == ref || en.id == ref {
			return en
		}
	}
	for _, en := range dn.eps {
		if len(ref) >= 3 && strings.HasPrefix(en.id, ref) {
			return en
		}
	}
	return nil
}

// linkAddr returns the address on network netID of the running
// container named ref.
func (t *dnsTable) linkAddr(netID, ref string) (netip.Addr, string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dn := t.nets[netID]
	if dn == nil {
		return netip.Addr{}, "", false
	}
	en := dn.find(ref)
	if en == nil {
		return netip.Addr{}, "", false
	}
	return en.ip, en.id, true
}

// linkTarget returns a copy of the entry of the running container named
// ref on network netID.
func (t *dnsTable) linkTarget(netID, ref string) (dnsEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if dn := t.nets[netID]; dn != nil {
		if en := dn.find(ref); en != nil {
			return *en, true
		}
	}
	return dnsEntry{}, false
}

// linkEnv is the environment legacy links give a container on the
// default bridge, as dockerd sets it: ALIAS_NAME, ALIAS_PORT and
// ALIAS_PORT_<port>_<proto>[_ADDR|_PORT|_PROTO] for each exposed port of
// the target, and ALIAS_ENV_<key> for its environment. Targets that do
// not run are left out (start refuses them when it writes /etc/hosts).
func (e *Engine) linkEnv(m *meta) []string {
	mode := modeOf(m)
	if mode.kind != "bridge" || mode.name != "bridge" || len(m.HostConfig.Links) == 0 || e.cfg.Network == nil {
		return nil
	}
	n, err := e.cfg.Network.Find("bridge")
	if err != nil {
		return nil
	}
	var env []string
	for _, l := range m.HostConfig.Links {
		target, alias, err := parseLink(l)
		if err != nil {
			continue
		}
		en, ok := e.dns.linkTarget(n.ID, target)
		if !ok {
			continue
		}
		prefix := envName(alias)
		env = append(env, prefix+"_NAME="+m.Name+"/"+alias)
		ports := append([]string(nil), en.ports...)
		sort.Slice(ports, func(i, j int) bool { return portLess(ports[i], ports[j]) })
		for i, p := range ports {
			num, proto, _ := strings.Cut(p, "/")
			url := fmt.Sprintf("%s://%s:%s", proto, en.ip, num)
			if i == 0 {
				env = append(env, prefix+"_PORT="+url)
			}
			pp := fmt.Sprintf("%s_PORT_%s_%s", prefix, num, strings.ToUpper(proto))
			env = append(env, pp+"="+url, pp+"_ADDR="+en.ip.String(), pp+"_PORT="+num, pp+"_PROTO="+proto)
		}
		for _, kv := range en.env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "HOME" || k == "HOSTNAME" || k == "PATH" {
				continue
			}
			env = append(env, prefix+"_ENV_"+k+"="+v)
		}
	}
	return env
}

// envName is a link alias as a variable name prefix: upper case, with
// anything but letters and digits as "_".
func envName(alias string) string {
	b := []byte(strings.ToUpper(alias))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// portLess orders "80/tcp" numerically, tcp before udp.
func portLess(a, b string) bool {
	an, ap, _ := strings.Cut(a, "/")
	bn, bp, _ := strings.Cut(b, "/")
	ai, _ := strconv.Atoi(an)
	bi, _ := strconv.Atoi(bn)
	if ai != bi {
		return ai < bi
	}
	return ap < bp
}

// namesFor is the view of container id for its embedded DNS server.
func (t *dnsTable) namesFor(id string) DNSNames { return ctrNames{t: t, id: id} }

type ctrNames struct {
	t  *dnsTable
	id string
}

// LookupIPv4 answers a container's name, alias, short id or link alias on
// the user-defined networks the asking container is on ("name.network"
// restricts to one), and host.docker.internal.
func (n ctrNames) LookupIPv4(q string) ([]netip.Addr, bool) {
	q = strings.TrimSuffix(strings.ToLower(q), ".")
	t := n.t
	if q == hostGatewayName || q == "gateway.docker.internal" {
		if t.hostGW.IsValid() {
			return []netip.Addr{t.hostGW}, true
		}
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, dn := range t.nets {
		self := dn.eps[n.id]
		if self == nil || !dn.userDefined {
			continue
		}
		name := q
		if short, ok := strings.CutSuffix(q, "."+strings.ToLower(dn.name)); ok {
			name = short
		}
		if target, ok := self.links[name]; ok {
			if en := dn.find(target); en != nil && !seen[en.ip] {
				seen[en.ip] = true
				out = append(out, en.ip)
			}
			continue
		}
		for _, en := range dn.eps {
			for _, nm := range en.names {
				if nm == name && !seen[en.ip] {
					seen[en.ip] = true
					out = append(out, en.ip)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out, len(out) > 0
}

// LookupPTR names an address of a container on one of the asking
// container's user-defined networks: "name.network".
func (n ctrNames) LookupPTR(a netip.Addr) (string, bool) {
	t := n.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, dn := range t.nets {
		if dn.eps[n.id] == nil || !dn.userDefined {
			continue
		}
		for _, en := range dn.eps {
			if en.ip == a {
				return en.name + "." + dn.name, true
			}
		}
	}
	return "", false
}

const defaultHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::	ip6-localnet
ff00::	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// hostsFile is a container's /etc/hosts: the defaults (the machine's own
// file under --network host), the container's address and hostname,
// --link entries of the default bridge, --add-host entries (host-gateway
// resolved) and host.docker.internal.
func (e *Engine) hostsFile(m *meta) ([]byte, error) {
	hc := m.HostConfig
	var b bytes.Buffer
	mode := modeOf(m)
	if mode.kind == "host" {
		if h, err := os.ReadFile("/etc/hosts"); err == nil {
			b.Write(h)
		} else {
			b.WriteString(defaultHosts)
		}
	} else {
		b.WriteString(defaultHosts)
	}
	if ep := primaryEndpoint(m); ep != nil {
		fmt.Fprintf(&b, "%s\t%s\n", ep.IP, m.Config.Hostname)
	}
	if mode.kind == "bridge" && mode.name == "bridge" && len(hc.Links) > 0 && m.Endpoints != nil {
		ep := m.Endpoints["bridge"]
		for _, l := range hc.Links {
			target, alias, err := parseLink(l)
			if err != nil {
				return nil, err
			}
			if ep == nil {
				continue
			}
			ip, id, ok := e.dns.linkAddr(ep.NetworkID, target)
			if !ok {
				return nil, conflict("Cannot link to a non running container: /%s AS %s/%s", target, m.Name, alias)
			}
			names := []string{alias}
			if alias != target {
				names = append(names, target)
			}
			fmt.Fprintf(&b, "%s\t%s %s\n", ip, strings.Join(names, " "), id[:12])
		}
	}
	hostGW := false
	for _, eh := range hc.ExtraHosts {
		h, ip, ok := strings.Cut(eh, ":")
		if !ok {
			if h, ip, ok = strings.Cut(eh, "="); !ok {
				return nil, invalid("invalid extra host %q: must be name:ip", eh)
			}
		}
		if ip == "host-gateway" {
			if !e.dns.hostGW.IsValid() {
				return nil, invalid("unable to derive the IP value for host-gateway")
			}
			ip = e.dns.hostGW.String()
		}
		if strings.EqualFold(h, hostGatewayName) {
			hostGW = true
		}
		fmt.Fprintf(&b, "%s\t%s\n", strings.Trim(ip, "[]"), h)
	}
	if e.cfg.HostGatewayName && !hostGW && e.dns.hostGW.IsValid() && mode.kind != "host" {
		fmt.Fprintf(&b, "%s\t%s\n", e.dns.hostGW, hostGatewayName)
	}
	return b.Bytes(), nil
}

// resolvConf builds the container's resolv.conf from the machine's,
// dropping loopback nameservers in a private network namespace, with
// --dns, --dns-search and --dns-option applied. A container on a
// user-defined network asks the embedded DNS server, which forwards
// what it does not know to the machine's resolvers.
func resolvConf(m *meta, embedded bool) []byte {
	hc := m.HostConfig
	host, _ := os.ReadFile("/etc/resolv.conf")
	var ns, search, options []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if hc.NetworkMode != "host" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
				continue
			}
			ns = append(ns, f[1])
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(hc.DNS) > 0 {
		ns = ns[:0]
		for _, a := range hc.DNS {
			ns = append(ns, a.String())
		}
	}
	if embedded {
		// --dns servers are the embedded server's upstreams then.
		ns = []string{embeddedDNS}
		options = append([]string{"ndots:0"}, options...)
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	var b bytes.Buffer
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	if len(search) > 0 && !(len(search) == 1 && search[0] == ".") {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// upstreamsOf are the resolvers a container's embedded DNS server
// forwards to: its --dns servers, else the machine's (loopback ones
// included, as the forwarding happens in the engine's namespace).
func upstreamsOf(m *meta) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range m.HostConfig.DNS {
		if a.Is4() || a.Is4In6() {
			out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	if len(out) > 0 {
		return out
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
	}
	return out
}
