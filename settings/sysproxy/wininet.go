package sysproxy

import "strings"

// wininetLocal is what "<local>" in ProxyOverride becomes. WinINet's
// "<local>" bypasses the proxy for every host name without a dot, which
// NO_PROXY cannot say; the names that matter for a container platform are
// the loopback ones, so those are listed instead. Intranet names without a
// dot still go through the proxy: list them in NO_PROXY by hand.
const wininetLocal = "localhost,127.0.0.1,::1"

// ParseWinINet makes a Proxy of the WinINet values under
// HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings:
// ProxyEnable (0 is no proxy), ProxyServer and ProxyOverride.
//
// ProxyServer is either "host:port", one proxy for every protocol, or a
// list of protocol=host:port entries ("http=h:3128;https=h:3129;ftp=..."),
// of which http and https are used (a "socks" entry is WinINet's SOCKS4,
// which HTTP_PROXY cannot name, so it is ignored). Entries may carry a
// scheme ("http://h:3128"); without one the proxy is http://.
//
// ProxyOverride is a ';'-separated list ("*.corp.example;10.*;<local>")
// that becomes NoProxy, with wildcards rewritten as NO_PROXY states them
// (".corp.example", "10.0.0.0/8") and "<local>" as wininetLocal says.
// A malformed entry is left out.
func ParseWinINet(enable uint32, server, override string) Proxy {
	if enable == 0 {
		return Proxy{}
	}
	var p Proxy
	server = strings.TrimSpace(server)
	if !strings.Contains(server, "=") {
		u := proxyURL(strings.TrimSpace(strings.Split(server, ";")[0]), 0)
		p.HTTP, p.HTTPS = u, u
	} else {
		for _, e := range strings.FieldsFunc(server, func(r rune) bool { return r == ';' || r == ' ' }) {
			proto, hostport, ok := strings.Cut(e, "=")
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(proto)) {
			case "http":
				if p.HTTP == "" {
					p.HTTP = proxyURL(hostport, 0)
				}
			case "https":
				if p.HTTPS == "" {
					p.HTTPS = proxyURL(hostport, 0)
				}
			}
		}
	}
	if p.HTTP == "" && p.HTTPS == "" {
		return Proxy{}
	}
	var entries []string
	for _, e := range strings.Split(override, ";") {
		e = strings.TrimSpace(e)
		if strings.EqualFold(e, "<local>") {
			e = wininetLocal
		}
		entries = append(entries, e)
	}
	p.NoProxy = noProxyList(entries)
	return p
}
