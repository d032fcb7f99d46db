package daemonjson

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Config)
	}{
		{name: "empty", in: ""},
		{name: "blank", in: " \n\t"},
		{name: "empty object", in: "{}"},
		{
			name: "all honoured keys",
			in: `{"debug": true, "log-level": "warn", "log-driver": "json-file",
				"log-opts": {"max-size": "10m", "max-file": "3"},
				"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
				"labels": ["a=b", "a=b"], "init": true, "default-shm-size": "128M",
				"hosts": ["unix:///x.sock"], "data-root": "/d", "exec-root": "/e"}`,
			check: func(t *testing.T, c *Config) {
				if !c.Debug || c.LogLevel != "warn" || c.LogOpts["max-size"] != "10m" || !c.Init {
					t.Errorf("decoded %+v", c)
				}
				if u := c.DefaultUlimits["nofile"]; u == nil || u.Soft != 1024 || u.Hard != 2048 {
					t.Errorf("ulimits %+v", c.DefaultUlimits)
				}
				if c.DefaultShmSize != 128*1024*1024 {
					t.Errorf("shm %d", c.DefaultShmSize)
				}
				if len(c.Hosts) != 1 || c.DataRoot != "/d" || c.ExecRoot != "/e" || !c.Has("hosts") || c.Has("bip") {
					t.Errorf("paths %+v", c)
				}
			},
		},
		{name: "ulimit name from key", in: `{"default-ulimits": {"nproc": {"Hard": 10, "Soft": 5}}}`, check: func(t *testing.T, c *Config) {
			if c.DefaultUlimits["nproc"].Name != "nproc" {
				t.Errorf("ulimits %+v", c.DefaultUlimits["nproc"])
			}
		}},
		{name: "shm as number", in: `{"default-shm-size": 1048576}`, check: func(t *testing.T, c *Config) {
			if c.DefaultShmSize != 1048576 {
				t.Errorf("shm %d", c.DefaultShmSize)
			}
		}},
		{
			name: "networking keys",
			in:   `{"bridge": "br9", "bip": "10.9.0.1/24", "mtu": 1400, "host-gateway-ip": "10.0.2.2", "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}`,
			check: func(t *testing.T, c *Config) {
				if c.Bridge != "br9" || c.Bip != "10.9.0.1/24" || c.MTU != 1400 || c.HostGatewayIP.String() != "10.0.2.2" {
					t.Errorf("decoded %+v", c)
				}
				if len(c.DefaultAddressPools) != 1 || c.DefaultAddressPools[0].Base.String() != "10.10.0.0/16" || c.DefaultAddressPools[0].Size != 24 {
					t.Errorf("pools %+v", c.DefaultAddressPools)
				}
			},
		},
		{name: "pool base masked", in: `{"default-address-pools": [{"base": "10.10.1.2/16", "size": 24}]}`, check: func(t *testing.T, c *Config) {
			if c.DefaultAddressPools[0].Base.String() != "10.10.0.0/16" {
				t.Errorf("pools %+v", c.DefaultAddressPools)
			}
		}},
		{name: "accepted compat keys", in: `{"experimental": false, "storage-driver": "overlay2", "insecure-registries": ["r:5000"], "registry-mirrors": []}`},
		{
			name: "registry keys",
			in: `{"insecure-registries": ["r:5000", "10.0.0.0/8"], "registry-mirrors": ["https://m.example:5000", "http://m2/"],
				"proxies": {"http-proxy": "http://p:3128", "https-proxy": "http://p:3129", "no-proxy": "localhost,.internal"},
				"max-concurrent-downloads": 6, "max-concurrent-uploads": 2, "registry-certs-dir": "/etc/berth/certs.d"}`,
			check: func(t *testing.T, c *Config) {
				if len(c.InsecureRegistries) != 2 || len(c.RegistryMirrors) != 2 || c.Proxies.HTTPProxy != "http://p:3128" ||
					c.Proxies.HTTPSProxy != "http://p:3129" || c.Proxies.NoProxy != "localhost,.internal" ||
					c.MaxConcurrentDownloads != 6 || c.MaxConcurrentUploads != 2 || c.RegistryCertsDir != "/etc/berth/certs.d" {
					t.Errorf("registry keys %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			roundTrip(t, c)
		})
	}
}

// TestParseBad is the table of refused documents and the exact messages
// the user sees.
func TestParseBad(t *testing.T) {
	tests := []struct {
		name, in, want string
		key            string // the key the first error names
	}{
		// The document itself.
		{"not an object", `[1]`, `line 1: invalid daemon configuration: must be a JSON object, not an array`, ""},
		{"null document", `null`, `line 1: invalid daemon configuration: must be a JSON object, not null`, ""},
		{"string document", "\n\"x\"", `line 2: invalid daemon configuration: must be a JSON object, not a string`, ""},
		{"trailing", "{}\n{}", `line 2: invalid daemon configuration: trailing data after the JSON object`, ""},
		{"truncated", "{\n  \"debug\": true,\n", `line 2: invalid daemon configuration: unexpected end of the document`, ""},
		{"syntax error", "{\n  \"debug\": true\n  \"init\": true\n}", `line 3: invalid daemon configuration: invalid character '"' after object key:value pair`, ""},
		{"trailing comma", "{\n  \"debug\": true,\n}", `line 3: invalid daemon configuration: invalid character '}' looking for beginning of object key string`, ""},
		{"duplicate key", "{\n  \"debug\": true,\n  \"debug\": false\n}", `line 3: "debug" is given twice (first on line 2)`, "debug"},
		// Unknown keys, with dockerd's message.
		{"unknown key", `{"foo": 1}`, `line 1: the following directives don't match any configuration option: foo`, ""},
		{"unknown keys sorted", "{\"zz\": 1,\n\"debug\": true,\n\"aa\": 2}", `line 1: the following directives don't match any configuration option: aa, zz`, ""},
		{"unknown beside bad", "{\"debug\": 1,\n\"features\": {}}", `line 2: the following directives don't match any configuration option: features`, ""},
		// Wrong types.
		{"bool as string", `{"debug": "yes"}`, `line 1: invalid value for "debug": expected a boolean, got a string`, "debug"},
		{"null value", `{"debug": null}`, `line 1: invalid value for "debug": expected a boolean, got null`, "debug"},
		{"labels not a list", `{"labels": "a=b"}`, `line 1: invalid value for "labels": expected an array of strings, got a string`, "labels"},
		{"hosts of numbers", `{"hosts": [1]}`, `line 1: invalid value for "hosts": expected an array of strings, got an array`, "hosts"},
		{"log opts not strings", `{"log-opts": {"max-size": 10}}`, `line 1: invalid value for "log-opts": expected an object of strings, got an object`, "log-opts"},
		{"mtu as string", "{\n\n  \"mtu\": \"1500\"}", `line 3: invalid value for "mtu": expected an integer, got a string`, "mtu"},
		{"mtu fraction", `{"mtu": 1400.5}`, `line 1: invalid value for "mtu": expected an integer, got a number`, "mtu"},
		{"uploads as string", `{"max-concurrent-uploads": "3"}`, `line 1: invalid value for "max-concurrent-uploads": expected a number, got a string`, "max-concurrent-uploads"},
		{"proxies not object", `{"proxies": "http://p"}`, `line 1: invalid value for "proxies": expected an object, got a string`, "proxies"},
		{"proxy wrong type", `{"proxies": {"http-proxy": 1}}`, `line 1: invalid value for "proxies.http-proxy": expected a string, got a number`, "proxies"},
		{"data root number", `{"data-root": 5}`, `line 1: invalid value for "data-root": expected a string, got a number`, "data-root"},
		{"ulimits list", `{"default-ulimits": []}`, `line 1: invalid value for "default-ulimits": expected an object of ulimits, got an array`, "default-ulimits"},
		{"pools object", `{"default-address-pools": {"base": "10.0.0.0/8"}}`, `line 1: invalid value for "default-address-pools": expected an array of {"base": "CIDR", "size": N}, got an object`, "default-address-pools"},
		// Bad values.
		{"bad bip", `{"bip": "10.9.0.0/24"}`, `line 1: invalid value for "bip": "10.9.0.0/24": the bridge needs a host address, not the network address`, "bip"},
		{"bip not cidr", `{"bip": "10.9.0.1"}`, `line 1: invalid value for "bip": "10.9.0.1" is not an address with a prefix length (like 172.17.0.1/16)`, "bip"},
		{"bip v6", `{"bip": "fd00::1/64"}`, `line 1: invalid value for "bip": "fd00::1/64": only IPv4 is supported`, "bip"},
		{"bip /31", `{"bip": "10.0.0.1/31"}`, `line 1: invalid value for "bip": "10.0.0.1/31": the prefix length must be between 8 and 30`, "bip"},
		{"mtu low", `{"mtu": 10}`, `line 1: invalid value for "mtu": 10 is not between 68 and 65535`, "mtu"},
		{"pool size", `{"default-address-pools": [{"base": "10.10.0.0/16", "size": 8}]}`, `line 1: invalid value for "default-address-pools": pool 0: size 8: must be between the base's prefix length 16 and 30`, "default-address-pools"},
		{"pool base", `{"default-address-pools": [{"base": "nope", "size": 24}]}`, `line 1: invalid value for "default-address-pools": pool 0: base "nope" is not a CIDR prefix`, "default-address-pools"},
		{"pool v6", `{"default-address-pools": [{"base": "fd00::/48", "size": 64}]}`, `line 1: invalid value for "default-address-pools": pool 0: base fd00::/48: an IPv4 prefix is required`, "default-address-pools"},
		{"empty pools", `{"default-address-pools": []}`, `line 1: invalid value for "default-address-pools": at least one pool is required`, "default-address-pools"},
		{"host gateway v6", `{"host-gateway-ip": "::1"}`, `line 1: invalid value for "host-gateway-ip": "::1" is not an IPv4 address`, "host-gateway-ip"},
		{"bridge none", `{"bridge": "none"}`, `line 1: invalid value for "bridge": running without a bridge is not supported`, "bridge"},
		{"bridge long", `{"bridge": "averyverylongbridge"}`, `line 1: invalid value for "bridge": "averyverylongbridge" is not an interface name`, "bridge"},
		{"bad label", `{"labels": ["nolabel"]}`, `line 1: invalid value for "labels": label "nolabel" must be key=value`, "labels"},
		{"log driver", `{"log-driver": "syslog"}`, `line 1: invalid value for "log-driver": log driver "syslog" is not supported (only json-file)`, "log-driver"},
		{"log opt", `{"log-opts": {"bogus": "1"}}`, `line 1: invalid value for "log-opts": unknown log opt 'bogus' for json-file log driver`, "log-opts"},
		{"log max-file alone", `{"log-opts": {"max-file": "3"}}`, `line 1: invalid value for "log-opts": max-file cannot be set without max-size`, "log-opts"},
		{"log level", `{"log-level": "loud"}`, `line 1: invalid value for "log-level": unable to parse logging level: loud`, "log-level"},
		{"shm words", `{"default-shm-size": "lots"}`, `line 1: invalid value for "default-shm-size": invalid size "lots"`, "default-shm-size"},
		{"shm zero", `{"default-shm-size": 0}`, `line 1: invalid value for "default-shm-size": expected a size such as "64M", got a number`, "default-shm-size"},
		{"ulimit null", `{"default-ulimits": {"nofile": null}}`, `line 1: invalid value for "default-ulimits": ulimit "nofile" is null`, "default-ulimits"},
		{"ulimit soft above hard", `{"default-ulimits": {"nofile": {"Hard": 1, "Soft": 2}}}`, `line 1: invalid value for "default-ulimits": ulimit soft limit must be less than or equal to hard limit: 2 > 1`, "default-ulimits"},
		{"ulimit unknown", `{"default-ulimits": {"bogus": {"Hard": 1, "Soft": 1}}}`, `line 1: invalid value for "default-ulimits": invalid ulimit type: bogus`, "default-ulimits"},
		{"storage driver", `{"storage-driver": "vfs"}`, `line 1: invalid value for "storage-driver": storage driver "vfs" is not supported (only overlay2)`, "storage-driver"},
		{"insecure with scheme", `{"insecure-registries": ["http://r:5000"]}`, `line 1: invalid value for "insecure-registries": insecure registry http://r:5000 should not contain '://'`, "insecure-registries"},
		{"mirror scheme", `{"registry-mirrors": ["ftp://m"]}`, `line 1: invalid value for "registry-mirrors": invalid mirror: unsupported scheme "ftp" in "ftp://m"`, "registry-mirrors"},
		{"mirror path", `{"registry-mirrors": ["https://m/v2"]}`, `line 1: invalid value for "registry-mirrors": invalid mirror: "https://m/v2" must be scheme://host[:port] with no path, query or credentials`, "registry-mirrors"},
		{"mirror credentials", `{"registry-mirrors": ["https://u:p@m"]}`, `line 1: invalid value for "registry-mirrors": invalid mirror: "https://u:p@m" must be scheme://host[:port] with no path, query or credentials`, "registry-mirrors"},
		{"unknown proxy key", `{"proxies": {"ftp-proxy": "x"}}`, `line 1: invalid value for "proxies": unknown key "ftp-proxy" (want http-proxy, https-proxy, no-proxy)`, "proxies"},
		{"zero downloads", `{"max-concurrent-downloads": 0}`, `line 1: invalid value for "max-concurrent-downloads": must be a positive number, got 0`, "max-concurrent-downloads"},
		{"relative certs dir", `{"registry-certs-dir": "certs"}`, `line 1: invalid value for "registry-certs-dir": "certs" is not an absolute path`, "registry-certs-dir"},
		// Conflicts.
		{"label two values", `{"labels": ["a=1", "a=2"]}`, `line 1: invalid value for "labels": label "a" is given two values ("1" and "2")`, "labels"},
		// Every bad key is reported, in document order.
		{"two bad keys", "{\n  \"mtu\": 1,\n  \"debug\": 2\n}", "line 2: invalid value for \"mtu\": 1 is not between 68 and 65535\nline 3: invalid value for \"debug\": expected a boolean, got a number", "mtu"},
	}
	if len(tests) < 30 {
		t.Fatalf("the table holds %d bad documents; keep at least 30", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted; want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err.Error(), tt.want)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			if list[0].Key != tt.key {
				t.Errorf("key %q, want %q", list[0].Key, tt.key)
			}
			var one *Error
			if !errors.As(err, &one) || one != list[0] {
				t.Errorf("errors.As does not reach the first *Error")
			}
		})
	}
}

func TestLineAt(t *testing.T) {
	data := []byte("a\nbc\n\nd")
	for off, want := range map[int64]int{0: 1, 1: 1, 2: 2, 3: 2, 5: 3, 6: 4, 7: 4, 99: 4, -1: 1} {
		if got := lineAt(data, off); got != want {
			t.Errorf("lineAt(%d) = %d, want %d", off, got, want)
		}
	}
}

func TestMarshal(t *testing.T) {
	c, err := Parse([]byte(`{"mtu": 1400, "default-shm-size": "1k", "host-gateway-ip": "10.0.2.2", "proxies": {"no-proxy": "x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"default-shm-size\": 1024,\n  \"host-gateway-ip\": \"10.0.2.2\",\n  \"mtu\": 1400,\n  \"proxies\": {\n    \"no-proxy\": \"x\"\n  }\n}\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if got, _ := new(Config).Marshal(); string(got) != "{}\n" {
		t.Errorf("zero config marshals as %q", got)
	}
}

// roundTrip checks that c, marshaled and parsed again, is unchanged.
func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	out, err := c.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("the marshaled document is refused: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, again) {
		t.Fatalf("round trip changed the configuration:\n%+v\n%+v\n%s", c, again, out)
	}
}

func FuzzParseDaemonJSON(f *testing.F) {
	f.Add([]byte(`{"debug": true, "log-opts": {"max-size": "1k"}}`))
	f.Add([]byte(`{"default-ulimits": {"nofile": {"Hard": 1, "Soft": 2}}}`))
	f.Add([]byte(`{"default-shm-size": "64M", "labels": ["a=b"]}`))
	f.Add([]byte("{\n\"mtu\": 1400,\n\"bip\": \"10.1.0.1/24\", \"default-address-pools\": [{\"base\": \"10.2.0.0/16\", \"size\": 24}]}"))
	f.Add([]byte(`{"proxies": {"http-proxy": "http://p:1"}, "registry-mirrors": ["https://m"], "host-gateway-ip": "1.2.3.4"}`))
	f.Add([]byte(`{"foo": {}}`))
	f.Add([]byte(`{"debug": true, "debug": true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList", err)
			}
			for _, e := range list {
				if e.Line < 0 || e.Line > 1+len(data) {
					t.Fatalf("line %d outside the document", e.Line)
				}
			}
			return
		}
		if c.DefaultShmSize < 0 {
			t.Fatalf("negative shm size accepted: %d", c.DefaultShmSize)
		}
		for _, k := range c.Keys() {
			if !Known(k) {
				t.Fatalf("unknown key %q accepted", k)
			}
		}
		if c.LogDriver != "" && c.LogDriver != "json-file" {
			t.Fatalf("log driver %q accepted", c.LogDriver)
		}
		roundTrip(t, c)
	})
}
