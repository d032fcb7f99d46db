package sysproxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseScutil reads the output of macOS's `scutil --proxy`, the proxies
// of the current network service:
//
//	<dictionary> {
//	  ExceptionsList : <array> {
//	    0 : *.local
//	    1 : 169.254/16
//	  }
//	  HTTPEnable : 1
//	  HTTPPort : 8080
//	  HTTPProxy : proxy.example.com
//	  HTTPSEnable : 0
//	}
//
// The web proxy (HTTPEnable, HTTPProxy, HTTPPort) gives HTTP and the
// secure web proxy (HTTPSEnable, ...) gives HTTPS, both as http:// URLs:
// macOS's secure web proxy is an HTTP proxy that tunnels with CONNECT. A
// proxy that is not enabled is ignored. ExceptionsList ("Bypass proxy
// settings for these hosts") gives NoProxy. Other keys (SOCKS, automatic
// configuration, the per-interface __SCOPED__ dictionary) are read past.
// The layout does not depend on line breaks. An error says what is not in
// that format.
func ParseScutil(out []byte) (Proxy, error) {
	p := &scutilParser{toks: strings.Fields(string(out))}
	top, err := p.value(0)
	if err != nil {
		return Proxy{}, fmt.Errorf("scutil --proxy output: %w", err)
	}
	if p.i != len(p.toks) {
		return Proxy{}, fmt.Errorf("scutil --proxy output: %q after the dictionary", p.toks[p.i])
	}
	d, ok := top.(map[string]any)
	if !ok {
		return Proxy{}, errors.New("scutil --proxy output: not a <dictionary>")
	}
	var proxy Proxy
	for _, k := range []struct {
		prefix string
		dst    *string
	}{{"HTTP", &proxy.HTTP}, {"HTTPS", &proxy.HTTPS}} {
		if s, _ := d[k.prefix+"Enable"].(string); s != "1" {
			continue
		}
		host, _ := d[k.prefix+"Proxy"].(string)
		if host == "" {
			continue
		}
		port := 0
		if s, ok := d[k.prefix+"Port"].(string); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 65535 {
				return Proxy{}, fmt.Errorf("scutil --proxy output: %sPort %q is not a port", k.prefix, s)
			}
			port = n
		}
		u := proxyURL(host, port)
		if u == "" {
			return Proxy{}, fmt.Errorf("scutil --proxy output: %sProxy %q is not a host", k.prefix, host)
		}
		*k.dst = u
	}
	if list, ok := d["ExceptionsList"].([]any); ok {
		var entries []string
		for _, v := range list {
			if s, ok := v.(string); ok {
				entries = append(entries, s)
			}
		}
		proxy.NoProxy = noProxyList(entries)
	}
	return proxy, nil
}

// maxScutilDepth bounds the nesting ParseScutil follows, so a hostile
// input cannot exhaust the stack.
const maxScutilDepth = 32

// scutilParser reads scutil's print format over white-space separated
// tokens: a <dictionary> { key : value ... } becomes a map[string]any, an
// <array> { 0 : value ... } a []any, and any other value a string (its
// tokens joined by one space, up to the next "key :" or "}").
type scutilParser struct {
	toks []string
	i    int
}

func (p *scutilParser) value(depth int) (any, error) {
	if p.i >= len(p.toks) {
		return nil, errors.New("unexpected end")
	}
	if depth > maxScutilDepth {
		return nil, errors.New("nested too deep")
	}
	switch p.toks[p.i] {
	case "<dictionary>", "<array>":
		kind := p.toks[p.i]
		p.i++
		if p.i >= len(p.toks) || p.toks[p.i] != "{" {
			return nil, fmt.Errorf("%s without {", kind)
		}
		p.i++
		d := map[string]any{}
		var a []any
		for {
			if p.i >= len(p.toks) {
				return nil, fmt.Errorf("%s without }", kind)
			}
			if p.toks[p.i] == "}" {
				p.i++
				if kind == "<array>" {
					return a, nil
				}
				return d, nil
			}
			key := p.toks[p.i]
			if p.i+1 >= len(p.toks) || p.toks[p.i+1] != ":" {
				return nil, fmt.Errorf("%q in a %s is not followed by \":\"", key, kind)
			}
			p.i += 2
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if kind == "<array>" {
				a = append(a, v)
			} else {
				d[key] = v
			}
		}
	}
	start := p.i
	for p.i < len(p.toks) && p.toks[p.i] != "}" &&
		(p.i == start || p.i+1 >= len(p.toks) || p.toks[p.i+1] != ":") {
		p.i++
	}
	return strings.Join(p.toks[start:p.i], " "), nil
}
