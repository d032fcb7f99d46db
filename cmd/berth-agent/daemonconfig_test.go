//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseDaemonConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, c *daemonConfig)
	}{
		{name: "empty", in: ""},
		{name: "empty object", in: "{}"},
		{
			name: "all honoured keys",
			in: `{"debug": true, "log-level": "warn", "log-driver": "json-file",
				"log-opts": {"max-size": "10m", "max-file": "3"},
				"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 2048, "Soft": 1024}},
				"labels": ["a=b"], "init": true, "default-shm-size": "128M",
				"hosts": ["unix:///x.sock"], "data-root": "/d", "exec-root": "/e"}`,
			check: func(t *testing.T, c *daemonConfig) {
				if !c.Debug || c.LogLevel != "warn" || c.LogOpts["max-size"] != "10m" || !c.Init {
					t.Errorf("decoded %+v", c)
				}
				if u := c.DefaultUlimits["nofile"]; u == nil || u.Soft != 1024 || u.Hard != 2048 {
					t.Errorf("ulimits %+v", c.DefaultUlimits)
				}
				if c.DefaultShmSize != 128*1024*1024 {
					t.Errorf("shm %d", c.DefaultShmSize)
				}
				if len(c.Hosts) != 1 || c.DataRoot != "/d" || c.ExecRoot != "/e" || !c.set["hosts"] {
					t.Errorf("paths %+v", c)
				}
			},
		},
		{name: "shm as number", in: `{"default-shm-size": 1048576}`, check: func(t *testing.T, c *daemonConfig) {
			if c.DefaultShmSize != 1048576 {
				t.Errorf("shm %d", c.DefaultShmSize)
			}
		}},
		{
			name: "networking keys",
			in:   `{"bridge": "br9", "bip": "10.9.0.1/24", "mtu": 1400, "host-gateway-ip": "10.0.2.2", "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}`,
			check: func(t *testing.T, c *daemonConfig) {
				if c.Bridge != "br9" || c.Bip != "10.9.0.1/24" || c.MTU != 1400 || c.HostGatewayIP.String() != "10.0.2.2" {
					t.Errorf("decoded %+v", c)
				}
				if len(c.DefaultAddressPools) != 1 || c.DefaultAddressPools[0].Base.String() != "10.10.0.0/16" || c.DefaultAddressPools[0].Size != 24 {
					t.Errorf("pools %+v", c.DefaultAddressPools)
				}
			},
		},
		{name: "bad bip", in: `{"bip": "10.9.0.0/24"}`, wantErr: `"bip": "10.9.0.0/24": the bridge needs a host address`},
		{name: "bad mtu", in: `{"mtu": 10}`, wantErr: `"mtu": 10 is not between 68 and 65535`},
		{name: "bad pool size", in: `{"default-address-pools": [{"base": "10.10.0.0/16", "size": 8}]}`, wantErr: `"default-address-pools": pool 0: size 8`},
		{name: "bad pool base", in: `{"default-address-pools": [{"base": "nope", "size": 24}]}`, wantErr: `base "nope" is not a CIDR prefix`},
		{name: "empty pools", in: `{"default-address-pools": []}`, wantErr: "at least one pool is required"},
		{name: "bad host gateway", in: `{"host-gateway-ip": "::1"}`, wantErr: `"host-gateway-ip": "::1" is not an IPv4 address`},
		{name: "bridge none", in: `{"bridge": "none"}`, wantErr: "running without a bridge is not supported"},
		{name: "unknown key", in: `{"foo": 1}`, wantErr: "the following directives don't match any configuration option: foo"},
		{name: "unknown keys sorted", in: `{"zz": 1, "debug": true, "aa": 2}`, wantErr: "configuration option: aa, zz"},
		{name: "wrong type bool", in: `{"debug": "yes"}`, wantErr: `invalid value for "debug": expected a boolean, got a string`},
		{name: "wrong type list", in: `{"labels": "a=b"}`, wantErr: `invalid value for "labels"`},
		{name: "bad label", in: `{"labels": ["nolabel"]}`, wantErr: `label "nolabel" must be key=value`},
		{name: "bad log driver", in: `{"log-driver": "syslog"}`, wantErr: `"log-driver": log driver "syslog" is not supported`},
		{name: "bad log opt", in: `{"log-opts": {"bogus": "1"}}`, wantErr: `invalid value for "log-opts": unknown log opt 'bogus'`},
		{name: "bad log level", in: `{"log-level": "loud"}`, wantErr: "unable to parse logging level: loud"},
		{name: "bad shm", in: `{"default-shm-size": "lots"}`, wantErr: `invalid value for "default-shm-size"`},
		{name: "null", in: `{"debug": null}`, wantErr: `expected a boolean, got null`},
		{name: "not an object", in: `[1]`, wantErr: "invalid daemon configuration"},
		{name: "trailing", in: `{} {}`, wantErr: "trailing data"},
		{name: "storage driver", in: `{"storage-driver": "vfs"}`, wantErr: `storage driver "vfs" is not supported`},
		{name: "accepted compat keys", in: `{"experimental": false, "storage-driver": "overlay2", "insecure-registries": ["r:5000"], "registry-mirrors": []}`},
		{
			name: "registry keys",
			in: `{"insecure-registries": ["r:5000", "10.0.0.0/8"], "registry-mirrors": ["https://m.example:5000"],
				"proxies": {"http-proxy": "http://p:3128", "https-proxy": "http://p:3129", "no-proxy": "localhost,.internal"},
				"max-concurrent-downloads": 6, "max-concurrent-uploads": 2, "registry-certs-dir": "/etc/berth/certs.d"}`,
			check: func(t *testing.T, c *daemonConfig) {
				rc := c.registryConfig("ua")
				if len(rc.Insecure) != 2 || len(rc.Mirrors) != 1 || rc.HTTPProxy != "http://p:3128" || rc.HTTPSProxy != "http://p:3129" ||
					rc.NoProxy != "localhost,.internal" || rc.MaxConcurrentDownloads != 6 || rc.MaxConcurrentUploads != 2 ||
					rc.CertsDir != "/etc/berth/certs.d" || rc.UserAgent != "ua" {
					t.Errorf("registry config %+v", rc)
				}
			},
		},
		{name: "registry defaults", in: `{}`, check: func(t *testing.T, c *daemonConfig) {
			if rc := c.registryConfig(""); rc.CertsDir != defaultRegistryCertsDir || rc.MaxConcurrentDownloads != 0 {
				t.Errorf("registry config %+v", rc)
			}
		}},
		{name: "insecure with scheme", in: `{"insecure-registries": ["http://r:5000"]}`, wantErr: `invalid value for "insecure-registries"`},
		{name: "bad mirror", in: `{"registry-mirrors": ["ftp://m"]}`, wantErr: `invalid value for "registry-mirrors": invalid mirror`},
		{name: "mirror with path", in: `{"registry-mirrors": ["https://m/v2"]}`, wantErr: `invalid value for "registry-mirrors"`},
		{name: "unknown proxy key", in: `{"proxies": {"ftp-proxy": "x"}}`, wantErr: `invalid value for "proxies": unknown key "ftp-proxy"`},
		{name: "proxy wrong type", in: `{"proxies": {"http-proxy": 1}}`, wantErr: `invalid value for "proxies.http-proxy": expected a string`},
		{name: "zero downloads", in: `{"max-concurrent-downloads": 0}`, wantErr: `invalid value for "max-concurrent-downloads": must be a positive number`},
		{name: "downloads wrong type", in: `{"max-concurrent-uploads": "3"}`, wantErr: `invalid value for "max-concurrent-uploads": expected a number, got a string`},
		{name: "relative certs dir", in: `{"registry-certs-dir": "certs"}`, wantErr: `invalid value for "registry-certs-dir"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseDaemonConfig([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func FuzzParseDaemonConfig(f *testing.F) {
	f.Add([]byte(`{"debug": true, "log-opts": {"max-size": "1k"}}`))
	f.Add([]byte(`{"default-ulimits": {"nofile": {"Hard": 1, "Soft": 2}}}`))
	f.Add([]byte(`{"default-shm-size": "64M", "labels": ["a=b"]}`))
	f.Add([]byte(`{"foo": {}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseDaemonConfig(data)
		if err != nil {
			return
		}
		if c.DefaultShmSize < 0 {
			t.Fatalf("negative shm size accepted: %d", c.DefaultShmSize)
		}
		for k := range c.set {
			if _, ok := daemonKeys[k]; !ok {
				t.Fatalf("unknown key %q accepted", k)
			}
		}
		if c.LogDriver != "" && c.LogDriver != "json-file" {
			t.Fatalf("log driver %q accepted", c.LogDriver)
		}
	})
}
