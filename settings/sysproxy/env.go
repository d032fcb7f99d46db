package sysproxy

import "strings"

// FromEnv reads the proxy variables through getenv (os.Getenv, or a
// stand-in in tests): HTTP_PROXY, HTTPS_PROXY and NO_PROXY, each either
// in upper or lower case. When both are set the lower-case one wins, as
// in curl. The values are kept as written (trimmed), apart from NoProxy's
// entries, which are trimmed and joined with commas. NO_PROXY without a
// proxy is the zero Proxy.
func FromEnv(getenv func(string) string) Proxy {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(strings.ToLower(name))); v != "" {
			return v
		}
		return strings.TrimSpace(getenv(name))
	}
	p := Proxy{HTTP: get("HTTP_PROXY"), HTTPS: get("HTTPS_PROXY")}
	if p.HTTP == "" && p.HTTPS == "" {
		return Proxy{}
	}
	var entries []string
	for _, e := range strings.Split(get("NO_PROXY"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	p.NoProxy = strings.Join(entries, ",")
	return p
}
