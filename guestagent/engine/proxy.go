//go:build linux

package engine

import "strings"

// ProxyEnv is what the engine gives every container as proxy variables
// (Config.ContainerProxy), as the docker CLI does with the "proxies" of
// its config.json and Docker Desktop with its proxy settings. An empty
// field injects nothing; the zero ProxyEnv injects nothing at all.
type ProxyEnv struct {
	// HTTP becomes HTTP_PROXY and http_proxy.
	HTTP string
	// HTTPS becomes HTTPS_PROXY and https_proxy.
	HTTPS string
	// NoProxy becomes NO_PROXY and no_proxy.
	NoProxy string
}

// addTo returns env with the proxy variables appended, each one only when
// env does not mention it yet in either case: a container started with
// http_proxy=x gets neither HTTP_PROXY nor http_proxy, so the user's own
// value is the only one. A bare "KEY" entry counts as mentioning it, as
// the docker CLI counts `-e KEY`. The result is a new slice: env is not
// written to. The variables land in the container's Config.Env, so
// docker inspect shows them, as it does the docker CLI's.
func (p ProxyEnv) addTo(env []string) []string {
	if p == (ProxyEnv{}) {
		return env
	}
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[strings.ToUpper(k)] = true
	}
	out := append([]string(nil), env...)
	for _, v := range []struct{ name, value string }{
		{"HTTP_PROXY", p.HTTP}, {"HTTPS_PROXY", p.HTTPS}, {"NO_PROXY", p.NoProxy},
	} {
		if v.value == "" || set[v.name] {
			continue
		}
		out = append(out, v.name+"="+v.value, strings.ToLower(v.name)+"="+v.value)
	}
	return out
}
