// Package sysproxy owns reading the operating system's proxy configuration:
// what Berth's "system" proxy mode (settings proxies.mode) uses for pulls
// and builds and gives to containers. Each OS keeps it somewhere else —
// macOS in the SystemConfiguration store (scutil --proxy), Windows in the
// WinINet registry values, Linux in the environment or GNOME's
// org.gnome.system.proxy — so the package is a set of pure parsers over
// that data (ParseScutil, ParseWinINet, FromEnv, ParseGSettings), tested on
// every OS, and one Read per OS (read_*.go) that fetches the data and hands
// it to its parser.
//
// Every parser returns the same Proxy: proxy URLs with a scheme
// ("http://host:3128") and a comma-separated NO_PROXY list in the form the
// docker CLI, curl and Go understand (".example.com", "10.0.0.0/8").
package sysproxy

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Proxy is a proxy configuration as the HTTP_PROXY, HTTPS_PROXY and
// NO_PROXY variables state it. The zero Proxy means no proxy.
type Proxy struct {
	// HTTP is the proxy for http:// requests, such as "http://host:3128".
	HTTP string
	// HTTPS is the proxy for https:// requests. It is usually an HTTP
	// proxy that tunnels with CONNECT, so its scheme is http too.
	HTTPS string
	// NoProxy lists the hosts, domains (".example.com") and networks
	// ("10.0.0.0/8") reached directly, comma-separated.
	NoProxy string
}

// IsZero reports whether p sets nothing.
func (p Proxy) IsZero() bool { return p == Proxy{} }

// proxyURL makes the URL of a proxy the OS names by host and port: the
// scheme is http unless host carries one, and port 0 leaves the scheme's
// default. It returns "" when host is not a host name or an IP address,
// so a malformed setting is left out rather than passed on.
func proxyURL(host string, port int) string {
	host = strings.TrimSpace(host)
	scheme := "http"
	if i := strings.Index(host, "://"); i >= 0 {
		scheme, host = strings.ToLower(host[:i]), host[i+3:]
		switch scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			return ""
		}
	}
	host = strings.TrimSuffix(host, "/")
	if h, p, err := net.SplitHostPort(host); err == nil && port == 0 {
		n, err := strconv.Atoi(p)
		if err != nil {
			return ""
		}
		host, port = h, n
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !validHost(host) || port < 0 || port > 65535 {
		return ""
	}
	hostport := host
	if port > 0 {
		hostport = net.JoinHostPort(host, strconv.Itoa(port))
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	u := url.URL{Scheme: scheme, Host: hostport}
	return u.String()
}

// validHost reports whether h is a DNS name (letters, digits, '-', '_'
// and dots) or an IP address.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return !strings.Contains(h, "%") // no zone: it has no place in a URL host here
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// noProxyList turns the OS's bypass entries into a NO_PROXY value: the
// entries are trimmed, rewritten by noProxyEntry, deduplicated in order
// and joined with commas; empty ones are dropped.
func noProxyList(entries []string) string {
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		for _, n := range noProxyEntry(e) {
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// noProxyEntry rewrites one bypass entry in the NO_PROXY form that the
// docker CLI, curl (7.86 and later for networks) and Go all match:
//
//	*.example.com  ->  .example.com   (the domain and its subdomains)
//	10.*, 10.1.*   ->  10.0.0.0/8, 10.1.0.0/16
//	169.254/16     ->  169.254.0.0/16 (macOS's short networks)
//
// Anything else is kept as it is. Entries holding white space or commas
// are split there, since NO_PROXY cannot hold them.
func noProxyEntry(e string) []string {
	fields := strings.FieldsFunc(e, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0
	})
	for i, f := range fields {
		fields[i] = normalizeNoProxy(f)
	}
	return fields
}

func normalizeNoProxy(e string) string {
	if e == "*" {
		return e
	}
	if strings.HasPrefix(e, "*.") && len(e) > 2 {
		return e[1:]
	}
	if n, ok := ipv4Wildcard(e); ok {
		return n
	}
	if n, ok := shortIPv4Prefix(e); ok {
		return n
	}
	return e
}

// ipv4Wildcard turns "10.*" or "192.168.*.*" into its network.
func ipv4Wildcard(e string) (string, bool) {
	parts := strings.Split(e, ".")
	if len(parts) < 2 || len(parts) > 4 || parts[len(parts)-1] != "*" {
		return "", false
	}
	var b [4]byte
	n := 0
	for _, p := range parts {
		if p == "*" {
			break
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 || (len(p) > 1 && p[0] == '0') {
			return "", false
		}
		b[n] = byte(v)
		n++
	}
	for _, p := range parts[n:] {
		if p != "*" {
			return "", false
		}
	}
	if n == 0 {
		return "", false
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*n).String(), true
}

// shortIPv4Prefix turns macOS's "169.254/16" into "169.254.0.0/16".
func shortIPv4Prefix(e string) (string, bool) {
	addr, bits, ok := strings.Cut(e, "/")
	if !ok {
		return "", false
	}
	parts := strings.Split(addr, ".")
	if len(parts) > 4 {
		return "", false
	}
	var b [4]byte
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 255 || (len(p) > 1 && p[0] == '0') {
			return "", false
		}
		b[i] = byte(v)
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 0 || n > 32 || (len(bits) > 1 && bits[0] == '0') {
		return "", false
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), n).Masked().String(), true
}
