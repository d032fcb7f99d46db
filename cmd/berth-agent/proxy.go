//go:build linux

package main

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/registry"
)

// hostDockerInternal is the name containers reach the host by
// (--host-docker-internal puts it in their /etc/hosts).
const hostDockerInternal = "host.docker.internal"

// containerProxies is what --container-proxies gives containers: the
// daemon.json "proxies". In Berth's VM (--host-docker-internal) a proxy on
// the host's loopback is named host.docker.internal instead, which reaches
// the host from a container, where 127.0.0.1 is the container itself.
func containerProxies(f *engineFlags, c *daemonConfig) ctrengine.ProxyEnv {
	if !f.containerProxies {
		return ctrengine.ProxyEnv{}
	}
	p := ctrengine.ProxyEnv{HTTP: c.Proxies.HTTPProxy, HTTPS: c.Proxies.HTTPSProxy, NoProxy: c.Proxies.NoProxy}
	if f.hostDockerInternal {
		p.HTTP = rewriteLoopbackProxy(p.HTTP, hostDockerInternal)
		p.HTTPS = rewriteLoopbackProxy(p.HTTPS, hostDockerInternal)
	}
	return p
}

// registryProxies points the registry client's loopback proxies at the
// host when the engine runs in Berth's VM (--host-docker-internal): the
// host's 127.0.0.1 is the host gateway there (--host-gateway-ip, which
// pid1 passes, or daemon.json's host-gateway-ip; the default bridge's
// gateway is the VM itself, so without either nothing changes). This
// holds with or without --container-proxies: a pull through a proxy on
// the VM's own loopback would fail either way.
func registryProxies(rc registry.Config, f *engineFlags, c *daemonConfig) registry.Config {
	if !f.hostDockerInternal {
		return rc
	}
	gw := hostGateway(f, c, nil)
	if !gw.IsValid() {
		return rc
	}
	rc.HTTPProxy = rewriteLoopbackProxy(rc.HTTPProxy, gw.String())
	rc.HTTPSProxy = rewriteLoopbackProxy(rc.HTTPSProxy, gw.String())
	return rc
}

// rewriteLoopbackProxy returns the proxy URL raw with its host replaced by
// host when it is a loopback one (localhost, 127.0.0.0/8 or ::1); the
// scheme, credentials, port and path are kept. A URL without a scheme
// ("127.0.0.1:3128", which Go's proxy lookup accepts as http) stays
// without one. Other URLs, and ones that do not parse, are returned as
// they are.
func rewriteLoopbackProxy(raw, host string) string {
	if raw == "" || host == "" {
		return raw
	}
	s, bare := raw, !strings.Contains(raw, "://")
	if bare {
		s = "http://" + raw
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !isLoopbackHost(u.Hostname()) {
		return raw
	}
	switch port := u.Port(); {
	case port != "":
		u.Host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		u.Host = "[" + host + "]"
	default:
		u.Host = host
	}
	out := u.String()
	if bare {
		out = strings.TrimPrefix(out, "http://")
	}
	return out
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}
