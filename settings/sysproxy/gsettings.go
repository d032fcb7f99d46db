package sysproxy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseGSettings makes a Proxy of GNOME's org.gnome.system.proxy keys as
// `gsettings get` prints them: mode, http host and port, https host and
// port, and ignore-hosts. Only mode 'manual' sets proxies ('none' and
// 'auto', a PAC file, give the zero Proxy); a host of "" or a port of 0 is
// unset. mode and the hosts may keep gsettings' quotes ('manual').
// ignoreHosts is a GVariant string array ("['localhost', '127.0.0.0/8']");
// one that does not parse leaves NoProxy empty.
func ParseGSettings(mode, httpHost string, httpPort int, httpsHost string, httpsPort int, ignoreHosts string) Proxy {
	if unquoteGVariant(mode) != "manual" {
		return Proxy{}
	}
	var p Proxy
	if h := unquoteGVariant(httpHost); h != "" && httpPort > 0 {
		p.HTTP = proxyURL(h, httpPort)
	}
	if h := unquoteGVariant(httpsHost); h != "" && httpsPort > 0 {
		p.HTTPS = proxyURL(h, httpsPort)
	}
	if p.HTTP == "" && p.HTTPS == "" {
		return Proxy{}
	}
	if hosts, err := parseGVariantStrings(ignoreHosts); err == nil {
		p.NoProxy = noProxyList(hosts)
	}
	return p
}

// unquoteGVariant returns s without white space around it and, when it is
// a GVariant string ('x' or "x"), without its quotes and escapes; anything
// else is returned trimmed.
func unquoteGVariant(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') {
		if v, rest, err := gvariantString(s); err == nil && rest == "" {
			return v
		}
	}
	return s
}

// parseGVariantStrings parses GVariant's text form of a string array, as
// gsettings prints it: "['a', 'b']", "@as []" or "[]". Strings may be
// quoted with ' or " and use backslash escapes.
func parseGVariantStrings(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if t, ok := strings.CutPrefix(s, "@as"); ok {
		s = strings.TrimSpace(t)
	}
	if !strings.HasPrefix(s, "[") {
		return nil, errors.New("a string array starts with [")
	}
	s = strings.TrimSpace(s[1:])
	var out []string
	if t, ok := strings.CutPrefix(s, "]"); ok {
		if strings.TrimSpace(t) != "" {
			return nil, fmt.Errorf("%q after the array", t)
		}
		return out, nil
	}
	for {
		v, rest, err := gvariantString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		rest = strings.TrimSpace(rest)
		switch {
		case strings.HasPrefix(rest, ","):
			s = strings.TrimSpace(rest[1:])
		case strings.HasPrefix(rest, "]"):
			if t := strings.TrimSpace(rest[1:]); t != "" {
				return nil, fmt.Errorf("%q after the array", t)
			}
			return out, nil
		default:
			return nil, errors.New("the array's strings are separated by , and end with ]")
		}
	}
}

// gvariantString reads one quoted GVariant string at the start of s and
// returns it unescaped with what follows it.
func gvariantString(s string) (string, string, error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", "", errors.New("a string is quoted with ' or \"")
	}
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), s[i+1:], nil
		case c == '\\':
			i++
			if i >= len(s) {
				return "", "", errors.New("a string ends in \\")
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'u', 'U':
				n := 4
				if e == 'U' {
					n = 8
				}
				if i+n >= len(s) {
					return "", "", errors.New("a short \\u escape")
				}
				var r rune
				for _, h := range s[i+1 : i+1+n] {
					d := strings.IndexRune("0123456789abcdef0123456789ABCDEF", h) % 16
					if d < 0 {
						return "", "", errors.New("a \\u escape that is not hexadecimal")
					}
					r = r<<4 | rune(d)
				}
				if !utf8.ValidRune(r) {
					return "", "", errors.New("a \\u escape that is not a character")
				}
				b.WriteRune(r)
				i += n
			default:
				b.WriteByte(e) // \\, \', \" and the rest stand for themselves
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("a string without its closing quote")
}
