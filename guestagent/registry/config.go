// Package registry owns the engine's conversations with image registries:
// resolving a reference to a manifest (platform choice in indexes), layer
// downloads with digest verification, pushing blobs and manifests, login,
// and the policy around them: credentials (basic, bearer tokens with
// scopes, anonymous), insecure registries (plain HTTP or unverified TLS
// only for the hosts and CIDRs listed, localhost always), mirrors for
// Docker Hub, proxies and a per-registry CA directory. The protocol is
// spoken through github.com/google/go-containerregistry; what is stored
// and how is the image package's business.
package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// DefaultMaxConcurrentDownloads is dockerd's default of
// max-concurrent-downloads.
const DefaultMaxConcurrentDownloads = 3

// DefaultMaxConcurrentUploads is dockerd's default of
// max-concurrent-uploads.
const DefaultMaxConcurrentUploads = 5

// Config is the registry policy, from daemon.json.
type Config struct {
	// Insecure lists registries ("host", "host:port") and CIDRs
	// ("10.0.0.0/8") that may be reached over plain HTTP or TLS without
	// verification (insecure-registries). Loopback is always insecure.
	Insecure []string
	// Mirrors are tried in order before Docker Hub for docker.io images
	// (registry-mirrors): URLs such as "https://mirror.example:5000".
	Mirrors []string
	// HTTPProxy, HTTPSProxy and NoProxy are daemon.json's proxies.
	HTTPProxy, HTTPSProxy, NoProxy string
	// CertsDir holds one directory per registry host ("host:port" as it
	// is named in references) with ca.crt (or any *.crt) trusted for that
	// registry and client.cert/client.key for TLS client authentication,
	// as dockerd's certs.d. Empty means none.
	CertsDir string
	// MaxConcurrentDownloads bounds the layers downloaded at once per
	// pull; MaxConcurrentUploads the layers uploaded at once per push.
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	// UserAgent is sent with every request.
	UserAgent string
}

// policy is a parsed Config.
type policy struct {
	cfg      Config
	hosts    map[string]bool
	cidrs    []*net.IPNet
	mirrors  []*url.URL
	proxy    func(*http.Request) (*url.URL, error)
	mu       sync.Mutex
	transMap map[string]*http.Transport
}

func newPolicy(cfg Config) (*policy, error) {
	p := &policy{cfg: cfg, hosts: map[string]bool{}, transMap: map[string]*http.Transport{}}
	for _, s := range cfg.Insecure {
		if strings.Contains(s, "://") {
			return nil, fmt.Errorf("insecure registry %s should not contain '://'", s)
		}
		if _, n, err := net.ParseCIDR(s); err == nil {
			p.cidrs = append(p.cidrs, n)
			continue
		}
		p.hosts[strings.ToLower(s)] = true
	}
	for _, m := range cfg.Mirrors {
		u, err := ParseMirror(m)
		if err != nil {
			return nil, err
		}
		p.mirrors = append(p.mirrors, u)
		// A mirror named with http:// may be reached over plain HTTP,
		// as dockerd allows.
		if u.Scheme == "http" {
			p.hosts[strings.ToLower(u.Host)] = true
		}
	}
	pc := httpproxy.Config{HTTPProxy: cfg.HTTPProxy, HTTPSProxy: cfg.HTTPSProxy, NoProxy: cfg.NoProxy}
	if pc.HTTPProxy != "" || pc.HTTPSProxy != "" {
		f := pc.ProxyFunc()
		p.proxy = func(r *http.Request) (*url.URL, error) { return f(r.URL) }
	} else {
		p.proxy = http.ProxyFromEnvironment
	}
	if cfg.MaxConcurrentDownloads <= 0 {
		p.cfg.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	if cfg.MaxConcurrentUploads <= 0 {
		p.cfg.MaxConcurrentUploads = DefaultMaxConcurrentUploads
	}
	return p, nil
}

// ParseMirror checks one registry-mirrors entry as dockerd does: an
// http(s) URL with a host and no path beyond "/".
func ParseMirror(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("invalid mirror: %q is not a valid URI: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid mirror: unsupported scheme %q in %q", u.Scheme, s)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("invalid mirror: %q must be scheme://host[:port] with no path, query or credentials", s)
	}
	u.Path = ""
	return u, nil
}

// IsInsecure reports whether host ("name" or "name:port") may be reached
// without verified TLS: loopback always, then the listed hosts, then the
// listed CIDRs (a name is resolved for that check, as dockerd does).
func (p *policy) IsInsecure(host string) bool {
	h := strings.ToLower(host)
	if p.hosts[h] {
		return true
	}
	name := h
	if hn, _, err := net.SplitHostPort(h); err == nil {
		name = hn
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	var ips []net.IP
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		ips = []net.IP{ip}
	} else if len(p.cidrs) > 0 {
		ips, _ = net.LookupIP(name)
	}
	for _, ip := range ips {
		if ip.IsLoopback() {
			return true
		}
		for _, n := range p.cidrs {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// errPlainHTTP refuses plain HTTP to a registry that is not insecure.
type plainHTTPError struct{ host string }

func (e *plainHTTPError) Error() string {
	return fmt.Sprintf("registry %s is not listed in insecure-registries: refusing plain HTTP", e.host)
}

// transport returns the HTTP transport for registry host: its proxy, its
// CAs and client certificate from CertsDir, verification off only for an
// insecure registry. Plain HTTP to a secure registry is refused.
func (p *policy) transport(host string) (http.RoundTripper, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	insecure := p.IsInsecure(host)
	// Certificates added to or changed in CertsDir take effect at the
	// next request, as with dockerd: the transport is keyed by them.
	key := host + "\x00" + p.certsStamp(host)
	if t := p.transMap[key]; t != nil {
		return guard(t, host, insecure), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if err := p.loadCerts(host, tc); err != nil {
		return nil, err
	}
	t := &http.Transport{
		Proxy:                 p.proxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		// Layers are mostly compressed already.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		ReadBufferSize:     256 << 10,
		WriteBufferSize:    256 << 10,
	}
	p.transMap[key] = t
	return guard(t, host, insecure), nil
}

// certsStamp names the state of CertsDir/host: its files' names, sizes
// and modification times.
func (p *policy) certsStamp(host string) string {
	if p.cfg.CertsDir == "" || strings.ContainsAny(host, `/\`) {
		return ""
	}
	entries, err := os.ReadDir(filepath.Join(p.cfg.CertsDir, host))
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// loadCerts reads CertsDir/host: *.crt are trusted CAs (added to the
// system's), client.cert with client.key a client certificate.
func (p *policy) loadCerts(host string, tc *tls.Config) error {
	if p.cfg.CertsDir == "" {
		return nil
	}
	if strings.ContainsAny(host, `/\`) || host == ".." || host == "." {
		return fmt.Errorf("registry host %q is not a valid name", host)
	}
	dir := filepath.Join(p.cfg.CertsDir, host)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read certificates of %s: %w", host, err)
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			if tc.RootCAs == nil {
				pool, err := x509.SystemCertPool()
				if err != nil || pool == nil {
					pool = x509.NewCertPool()
				}
				tc.RootCAs = pool
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read CA of %s: %w", host, err)
			}
			if !tc.RootCAs.AppendCertsFromPEM(b) {
				return fmt.Errorf("CA file %s of %s holds no PEM certificate", name, host)
			}
		case strings.HasSuffix(name, ".cert"):
			key := strings.TrimSuffix(name, ".cert") + ".key"
			cert, err := tls.LoadX509KeyPair(path, filepath.Join(dir, key))
			if err != nil {
				return fmt.Errorf("client certificate %s of %s (with %s): %w", name, host, key, err)
			}
			tc.Certificates = append(tc.Certificates, cert)
		case strings.HasSuffix(name, ".key"):
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".key")+".cert")); err != nil {
				return fmt.Errorf("client key %s of %s has no matching .cert", name, host)
			}
		}
	}
	return nil
}

// guard wraps t so that plain HTTP reaches only an insecure registry.
func guard(t http.RoundTripper, host string, insecure bool) http.RoundTripper {
	if insecure {
		return t
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "http" && strings.EqualFold(r.URL.Host, host) {
			return nil, &plainHTTPError{host: host}
		}
		return t.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (p *policy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.transMap {
		t.CloseIdleConnections()
	}
}
