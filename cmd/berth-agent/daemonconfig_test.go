//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

// The document's rules and their messages are tested in settings/daemonjson;
// these tests cover what the engine makes of a parsed document.
func TestParseDaemonConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, c *daemonConfig)
	}{
		{name: "empty", in: "", check: func(t *testing.T, c *daemonConfig) {
			if len(c.set) != 0 || c.DefaultAddressPools != nil {
				t.Errorf("empty document gave %+v", c)
			}
		}},
		{name: "set keys", in: `{"hosts": ["unix:///x.sock"], "data-root": "/d"}`, check: func(t *testing.T, c *daemonConfig) {
			if !c.set["hosts"] || !c.set["data-root"] || c.set["exec-root"] || c.DataRoot != "/d" {
				t.Errorf("set %v, config %+v", c.set, c)
			}
		}},
		{name: "pools", in: `{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}, {"base": "10.11.0.0/16", "size": 20}]}`,
			check: func(t *testing.T, c *daemonConfig) {
				want := []network.Pool{{Base: netip.MustParsePrefix("10.10.0.0/16"), Size: 24}, {Base: netip.MustParsePrefix("10.11.0.0/16"), Size: 20}}
				if len(c.DefaultAddressPools) != 2 || c.DefaultAddressPools[0] != want[0] || c.DefaultAddressPools[1] != want[1] {
					t.Errorf("pools %+v", c.DefaultAddressPools)
				}
			}},
		{name: "networking keys", in: `{"bridge": "br9", "bip": "10.9.0.1/24", "mtu": 1400, "host-gateway-ip": "10.0.2.2"}`,
			check: func(t *testing.T, c *daemonConfig) {
				if c.Bridge != "br9" || c.Bip != "10.9.0.1/24" || c.MTU != 1400 || c.HostGatewayIP.String() != "10.0.2.2" {
					t.Errorf("decoded %+v", c)
				}
			}},
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
				if _, err := registry.New(rc); err != nil {
					t.Errorf("the registry client refuses the accepted document: %v", err)
				}
			},
		},
		{name: "registry defaults", in: `{}`, check: func(t *testing.T, c *daemonConfig) {
			if rc := c.registryConfig(""); rc.CertsDir != defaultRegistryCertsDir || rc.MaxConcurrentDownloads != 0 {
				t.Errorf("registry config %+v", rc)
			}
		}},
		{name: "error names key and line", in: "{\n  \"mtu\": 10\n}", wantErr: `line 2: invalid value for "mtu": 10 is not between 68 and 65535`},
		{name: "unknown key", in: `{"foo": 1}`, wantErr: "the following directives don't match any configuration option: foo"},
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

// TestParseDaemonConfigAgrees checks that settings/daemonjson, which
// restates the registry and network rules so the host can check a document
// without the engine, refuses exactly what the engine's own packages
// refuse.
func TestParseDaemonConfigAgrees(t *testing.T) {
	agree := func(what, v string, doc, eng error) {
		t.Helper()
		if (doc == nil) != (eng == nil) {
			t.Errorf("%s %q: daemonjson says %v, the engine says %v", what, v, doc, eng)
		}
	}
	for _, s := range []string{"r:5000", "R.Example", "10.0.0.0/8", "", "http://r", "r://", "::1", "[::1]:5000"} {
		_, eng := registry.New(registry.Config{Insecure: []string{s}})
		agree("insecure registry", s, daemonjson.CheckInsecureRegistry(s), eng)
	}
	for _, s := range []string{"https://m", "http://m:5000/", "ftp://m", "https://m/v2", "https://u:p@m", "https://m?q", "https://m#f", "m", "", "https://", "%zz"} {
		_, eng := registry.ParseMirror(s)
		agree("mirror", s, daemonjson.CheckMirror(s), eng)
	}
	for _, s := range []string{"10.0.0.0/8", "10.0.0.0/16", "10.0.0.0/30", "10.0.0.0/31", "10.0.0.0/7", "fd00::/48", "0.0.0.0/0"} {
		base := netip.MustParsePrefix(s)
		for _, size := range []int{0, 7, 8, 16, 24, 30, 31} {
			v := fmt.Sprintf("%s size %d", s, size)
			agree("pool", v, daemonjson.CheckPool(daemonjson.Pool{Base: base, Size: size}), network.ValidatePool(network.Pool{Base: base, Size: size}))
		}
	}
	for _, opts := range []map[string]string{{"max-size": "1k"}, {"max-file": "2"}, {"max-size": "x"}, {"tag": "t"}, {"bogus": "1"}} {
		doc, err := json.Marshal(map[string]any{"log-opts": opts})
		if err != nil {
			t.Fatal(err)
		}
		_, docErr := daemonjson.Parse(doc)
		_, eng := logs.ParseOptions(opts)
		agree("log-opts", string(doc), docErr, eng)
	}
}
