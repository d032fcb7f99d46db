package sysproxy

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const scutilFull = `<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
    2 : 10.*
  }
  ExcludeSimpleHostnames : 1
  FTPPassive : 1
  HTTPEnable : 1
  HTTPPort : 3128
  HTTPProxy : proxy.example.com
  HTTPSEnable : 1
  HTTPSPort : 3129
  HTTPSProxy : secure.example.com
  ProxyAutoConfigEnable : 0
  SOCKSEnable : 0
  __SCOPED__ : <dictionary> {
    en0 : <dictionary> {
      HTTPEnable : 1
      HTTPProxy : scoped.example.com
    }
  }
}
`

func TestParseScutil(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Proxy
		wantErr string
	}{
		{name: "full", in: scutilFull, want: Proxy{
			HTTP: "http://proxy.example.com:3128", HTTPS: "http://secure.example.com:3129",
			NoProxy: ".local,169.254.0.0/16,10.0.0.0/8"}},
		{name: "no proxies", in: "<dictionary> {\n  FTPPassive : 1\n}\n"},
		{name: "empty dictionary", in: "<dictionary> { }"},
		{name: "one line", in: "<dictionary> { HTTPEnable : 1  HTTPProxy : h  HTTPPort : 8080  HTTPSEnable : 0  HTTPSProxy : s  HTTPSPort : 1 ExceptionsList : <array> { 0 : *.local 1 : 169.254/16 } }",
			want: Proxy{HTTP: "http://h:8080", NoProxy: ".local,169.254.0.0/16"}},
		{name: "disabled entries ignored", in: "<dictionary> {\n HTTPEnable : 0\n HTTPProxy : h\n HTTPPort : 1\n}", want: Proxy{}},
		{name: "no port", in: "<dictionary> { HTTPSEnable : 1 HTTPSProxy : s }", want: Proxy{HTTPS: "http://s"}},
		{name: "ipv6 host", in: "<dictionary> { HTTPEnable : 1 HTTPProxy : fd00::1 HTTPPort : 3128 }", want: Proxy{HTTP: "http://[fd00::1]:3128"}},
		{name: "value with spaces", in: "<dictionary> { ProxyAutoConfigURLString : a b c HTTPEnable : 1 HTTPProxy : h }", want: Proxy{HTTP: "http://h"}},
		{name: "empty value", in: "<dictionary> { HTTPProxy : }"},
		{name: "empty", in: "", wantErr: "unexpected end"},
		{name: "not a dictionary", in: "HTTPEnable", wantErr: "not a <dictionary>"},
		{name: "unclosed", in: "<dictionary> { HTTPEnable : 1", wantErr: "without }"},
		{name: "no colon", in: "<dictionary> { HTTPEnable 1 }", wantErr: `not followed by ":"`},
		{name: "trailing", in: "<dictionary> { } }", wantErr: "after the dictionary"},
		{name: "bad port", in: "<dictionary> { HTTPEnable : 1 HTTPProxy : h HTTPPort : x }", wantErr: `HTTPPort "x" is not a port`},
		{name: "bad host", in: "<dictionary> { HTTPEnable : 1 HTTPProxy : a/b }", wantErr: `HTTPProxy "a/b" is not a host`},
		{name: "deep", in: strings.Repeat("<dictionary> { a : ", 40) + "x" + strings.Repeat(" }", 40), wantErr: "nested too deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScutil([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWinINet(t *testing.T) {
	tests := []struct {
		name             string
		enable           uint32
		server, override string
		want             Proxy
	}{
		{name: "disabled", enable: 0, server: "p:3128", override: "<local>"},
		{name: "one for all", enable: 1, server: "proxy.corp:3128",
			want: Proxy{HTTP: "http://proxy.corp:3128", HTTPS: "http://proxy.corp:3128"}},
		{name: "per protocol", enable: 1, server: "http=h:3128;https=s:3129;ftp=f:21;socks=k:1080",
			want: Proxy{HTTP: "http://h:3128", HTTPS: "http://s:3129"}},
		{name: "https only", enable: 1, server: "https=s:3129", want: Proxy{HTTPS: "http://s:3129"}},
		{name: "scheme kept", enable: 1, server: "http=http://h:3128;https=https://s:443",
			want: Proxy{HTTP: "http://h:3128", HTTPS: "https://s:443"}},
		{name: "override", enable: 1, server: "p:8080", override: "*.corp.example; 10.*;192.168.1.*;<local>",
			want: Proxy{HTTP: "http://p:8080", HTTPS: "http://p:8080",
				NoProxy: ".corp.example,10.0.0.0/8,192.168.1.0/24,localhost,127.0.0.1,::1"}},
		{name: "local case and duplicates", enable: 1, server: "p", override: "localhost;<LOCAL>;;",
			want: Proxy{HTTP: "http://p", HTTPS: "http://p", NoProxy: "localhost,127.0.0.1,::1"}},
		{name: "enabled without server", enable: 1, server: "", override: "<local>"},
		{name: "bad server", enable: 1, server: "a b:c"},
		{name: "ipv6", enable: 1, server: "[fd00::1]:3128", want: Proxy{HTTP: "http://[fd00::1]:3128", HTTPS: "http://[fd00::1]:3128"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseWinINet(tt.enable, tt.server, tt.override); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Proxy
	}{
		{name: "none"},
		{name: "upper", env: map[string]string{"HTTP_PROXY": "http://h:1", "HTTPS_PROXY": "http://s:2", "NO_PROXY": "a, b ,,c"},
			want: Proxy{HTTP: "http://h:1", HTTPS: "http://s:2", NoProxy: "a,b,c"}},
		{name: "lower wins", env: map[string]string{"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:1", "NO_PROXY": "up", "no_proxy": "low"},
			want: Proxy{HTTP: "http://low:1", NoProxy: "low"}},
		{name: "empty lower falls back", env: map[string]string{"https_proxy": " ", "HTTPS_PROXY": "s:3128"},
			want: Proxy{HTTPS: "s:3128"}},
		{name: "no_proxy alone", env: map[string]string{"no_proxy": "localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromEnv(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseGSettings(t *testing.T) {
	tests := []struct {
		name           string
		mode, httpHost string
		httpPort       int
		httpsHost      string
		httpsPort      int
		ignore         string
		want           Proxy
	}{
		{name: "manual", mode: "'manual'", httpHost: "'h.example'", httpPort: 3128, httpsHost: "'s.example'", httpsPort: 3129,
			ignore: "['localhost', '127.0.0.0/8', '::1', '*.local']",
			want:   Proxy{HTTP: "http://h.example:3128", HTTPS: "http://s.example:3129", NoProxy: "localhost,127.0.0.0/8,::1,.local"}},
		{name: "unquoted", mode: "manual", httpHost: "h", httpPort: 80, ignore: "@as []", want: Proxy{HTTP: "http://h:80"}},
		{name: "none", mode: "'none'", httpHost: "'h'", httpPort: 3128},
		{name: "auto", mode: "'auto'", httpHost: "'h'", httpPort: 3128},
		{name: "port 0 unset", mode: "'manual'", httpHost: "'h'", httpPort: 0, httpsHost: "'s'", httpsPort: 443, ignore: "[]",
			want: Proxy{HTTPS: "http://s:443"}},
		{name: "no host", mode: "'manual'", httpHost: "''", httpPort: 8080, ignore: "['localhost']"},
		{name: "bad ignore list", mode: "'manual'", httpHost: "'h'", httpPort: 1, ignore: "['a'", want: Proxy{HTTP: "http://h:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseGSettings(tt.mode, tt.httpHost, tt.httpPort, tt.httpsHost, tt.httpsPort, tt.ignore)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseGVariantStrings(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "[]", want: nil},
		{in: "@as []", want: nil},
		{in: " ['localhost', '127.0.0.0/8'] ", want: []string{"localhost", "127.0.0.0/8"}},
		{in: `["a", 'b\'c', 'd\\e', '\u00e9']`, want: []string{"a", "b'c", `d\e`, "é"}},
		{in: "['a',]", wantErr: true},
		{in: "['a' 'b']", wantErr: true},
		{in: "['a'] x", wantErr: true},
		{in: "[] x", wantErr: true},
		{in: "'a'", wantErr: true},
		{in: "['a", wantErr: true},
		{in: `['\u12']`, wantErr: true},
		{in: `['\uzzzz']`, wantErr: true},
		{in: `['a\`, wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseGVariantStrings(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || len(got) != len(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoProxyEntry(t *testing.T) {
	for in, want := range map[string]string{
		"*":             "*",
		"*.example.com": ".example.com",
		".example.com":  ".example.com",
		"10.*":          "10.0.0.0/8",
		"172.16.*.*":    "172.16.0.0/16",
		"1.2.3.*":       "1.2.3.0/24",
		"169.254/16":    "169.254.0.0/16",
		"10.1.2.3/8":    "10.0.0.0/8",
		"fd00::/8":      "fd00::/8",
		"10.*.3.*":      "10.*.3.*",
		"300.*":         "300.*",
		"01.*":          "01.*",
		"host.example":  "host.example",
		"a/33":          "a/33",
	} {
		if got := strings.Join(noProxyEntry(in), ","); got != want {
			t.Errorf("noProxyEntry(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkWellFormed fails unless p is what the package promises: proxy URLs
// with a scheme and a host, and a NO_PROXY list of non-empty entries
// without white space.
func checkWellFormed(t *testing.T, p Proxy) {
	t.Helper()
	for _, u := range []string{p.HTTP, p.HTTPS} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || pu.Hostname() == "" || pu.Path != "" || pu.User != nil || pu.RawQuery != "" || pu.Fragment != "" {
			t.Fatalf("proxy URL %q is not scheme://host[:port] (%v)", u, err)
		}
		switch pu.Scheme {
		case "http", "https", "socks5", "socks5h":
		default:
			t.Fatalf("proxy URL %q: scheme %q", u, pu.Scheme)
		}
	}
	if p.NoProxy == "" {
		return
	}
	for _, e := range strings.Split(p.NoProxy, ",") {
		if e == "" || strings.ContainsAny(e, " \t\r\n;") {
			t.Fatalf("NoProxy %q has the entry %q", p.NoProxy, e)
		}
	}
}
