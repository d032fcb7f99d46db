//go:build linux

package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

func TestRewriteLoopbackProxy(t *testing.T) {
	tests := []struct {
		raw, host, want string
	}{
		{"http://127.0.0.1:3128", "host.docker.internal", "http://host.docker.internal:3128"},
		{"http://localhost:3128", "host.docker.internal", "http://host.docker.internal:3128"},
		{"http://LocalHost:3128/", "host.docker.internal", "http://host.docker.internal:3128/"},
		{"http://[::1]:3128", "host.docker.internal", "http://host.docker.internal:3128"},
		{"http://127.0.0.2:8080", "192.168.5.2", "http://192.168.5.2:8080"},
		{"https://user:pw@127.0.0.1:443", "10.0.2.2", "https://user:pw@10.0.2.2:443"},
		{"socks5://127.0.0.1:1080", "10.0.2.2", "socks5://10.0.2.2:1080"},
		{"http://127.0.0.1", "10.0.2.2", "http://10.0.2.2"},
		{"http://127.0.0.1:3128", "fd00::2", "http://[fd00::2]:3128"},
		{"http://127.0.0.1", "fd00::2", "http://[fd00::2]"},
		{"127.0.0.1:3128", "host.docker.internal", "host.docker.internal:3128"},
		{"localhost:3128", "10.0.2.2", "10.0.2.2:3128"},
		{"http://proxy.example:3128", "host.docker.internal", "http://proxy.example:3128"},
		{"http://10.1.2.3:3128", "host.docker.internal", "http://10.1.2.3:3128"},
		{"http://localhost.example:3128", "host.docker.internal", "http://localhost.example:3128"},
		{"http://127.0.0.1:3128", "", "http://127.0.0.1:3128"},
		{"", "host.docker.internal", ""},
		{"http://%zz", "host.docker.internal", "http://%zz"},
	}
	for _, tt := range tests {
		if got := rewriteLoopbackProxy(tt.raw, tt.host); got != tt.want {
			t.Errorf("rewriteLoopbackProxy(%q, %q) = %q, want %q", tt.raw, tt.host, got, tt.want)
		}
	}
}

func TestEngineProxies(t *testing.T) {
	file := &daemonConfig{Config: daemonjson.Config{Proxies: daemonjson.Proxies{
		HTTPProxy: "http://127.0.0.1:3128", HTTPSProxy: "http://proxy.example:3129", NoProxy: "localhost,.local"}}}
	gw := netip.MustParseAddr("10.0.2.2")
	tests := []struct {
		name      string
		flags     engineFlags
		file      *daemonConfig
		container ctrengine.ProxyEnv
		reg       [3]string
	}{
		{name: "no flags", file: file,
			reg: [3]string{"http://127.0.0.1:3128", "http://proxy.example:3129", "localhost,.local"}},
		{name: "container proxies natively", flags: engineFlags{containerProxies: true}, file: file,
			container: ctrengine.ProxyEnv{HTTP: "http://127.0.0.1:3128", HTTPS: "http://proxy.example:3129", NoProxy: "localhost,.local"},
			reg:       [3]string{"http://127.0.0.1:3128", "http://proxy.example:3129", "localhost,.local"}},
		{name: "in the VM", flags: engineFlags{containerProxies: true, hostDockerInternal: true, hostGatewayIP: gw}, file: file,
			container: ctrengine.ProxyEnv{HTTP: "http://host.docker.internal:3128", HTTPS: "http://proxy.example:3129", NoProxy: "localhost,.local"},
			reg:       [3]string{"http://10.0.2.2:3128", "http://proxy.example:3129", "localhost,.local"}},
		{name: "in the VM without container proxies", flags: engineFlags{hostDockerInternal: true, hostGatewayIP: gw}, file: file,
			reg: [3]string{"http://10.0.2.2:3128", "http://proxy.example:3129", "localhost,.local"}},
		{name: "gateway from daemon.json", flags: engineFlags{hostDockerInternal: true},
			file: &daemonConfig{Config: daemonjson.Config{HostGatewayIP: gw, Proxies: daemonjson.Proxies{HTTPSProxy: "localhost:3128"}}},
			reg:  [3]string{"", "10.0.2.2:3128", ""}},
		{name: "no gateway known", flags: engineFlags{containerProxies: true, hostDockerInternal: true}, file: file,
			container: ctrengine.ProxyEnv{HTTP: "http://host.docker.internal:3128", HTTPS: "http://proxy.example:3129", NoProxy: "localhost,.local"},
			reg:       [3]string{"http://127.0.0.1:3128", "http://proxy.example:3129", "localhost,.local"}},
		{name: "no proxies", flags: engineFlags{containerProxies: true, hostDockerInternal: true, hostGatewayIP: gw}, file: &daemonConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerProxies(&tt.flags, tt.file); got != tt.container {
				t.Errorf("containers get %+v, want %+v", got, tt.container)
			}
			rc := registryProxies(tt.file.registryConfig("test"), &tt.flags, tt.file)
			if got := [3]string{rc.HTTPProxy, rc.HTTPSProxy, rc.NoProxy}; got != tt.reg {
				t.Errorf("the registry client gets %q, want %q", got, tt.reg)
			}
			if want := tt.file.registryConfig("test"); rc.CertsDir != want.CertsDir || rc.UserAgent != want.UserAgent {
				t.Errorf("registryProxies changed more than the proxies: %+v", rc)
			}
		})
	}
}

// proxyEngine is an engine of the test's own started with daemon.json doc
// and args, given the test image.
func proxyEngine(t *testing.T, name string, doc map[string]any, args ...string) *engine {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	cfg := filepath.Join(workDir, name+"-daemon.json")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := startEngine(filepath.Join(workDir, name), append([]string{"--config-file", cfg}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e.ownedBy(t)
}

// TestContainerProxies runs containers on engines whose daemon.json has
// proxies: with --container-proxies they get HTTP_PROXY, http_proxy,
// NO_PROXY and no_proxy (and docker inspect shows them), unless their own
// env names the variable; without the flag they get none; with
// --host-docker-internal a loopback proxy is named host.docker.internal.
// No proxy is contacted: the containers only print their environment.
func TestContainerProxies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the engine runs natively, which needs root")
	}
	doc := map[string]any{"proxies": map[string]any{"http-proxy": "http://127.0.0.1:3128", "no-proxy": "localhost"}}
	env := func(t *testing.T, e *engine, args ...string) []string {
		t.Helper()
		out := e.ok(t, append(append([]string{"run", "--rm", "--network", "none"}, args...), testImage, "env")...)
		return strings.Split(out, "\n")
	}
	proxyVars := func(vars []string) []string {
		var out []string
		for _, kv := range vars {
			k, _, _ := strings.Cut(kv, "=")
			if strings.HasSuffix(strings.ToUpper(k), "_PROXY") {
				out = append(out, kv)
			}
		}
		slices.Sort(out)
		return out
	}

	t.Run("injected", func(t *testing.T) {
		e := proxyEngine(t, "proxies-on", doc, "--container-proxies")
		want := []string{"HTTP_PROXY=http://127.0.0.1:3128", "NO_PROXY=localhost", "http_proxy=http://127.0.0.1:3128", "no_proxy=localhost"}
		if got := proxyVars(env(t, e)); !slices.Equal(got, want) {
			t.Errorf("container env has %q, want %q", got, want)
		}
		if got := proxyVars(env(t, e, "-e", "http_proxy=x")); !slices.Equal(got, []string{"NO_PROXY=localhost", "http_proxy=x", "no_proxy=localhost"}) {
			t.Errorf("with -e http_proxy=x the container env has %q", got)
		}
		id := e.create(t, "--network", "none", testImage, "true")
		if got := proxyVars(e.inspect(t, id).Config.Env); !slices.Equal(got, want) {
			t.Errorf("inspect's Config.Env has %q, want %q", got, want)
		}
	})
	t.Run("not asked", func(t *testing.T) {
		e := proxyEngine(t, "proxies-off", doc)
		if got := proxyVars(env(t, e)); len(got) != 0 {
			t.Errorf("without --container-proxies the container env has %q", got)
		}
	})
	t.Run("host.docker.internal", func(t *testing.T) {
		e := proxyEngine(t, "proxies-hdi", doc, "--container-proxies", "--host-docker-internal")
		want := []string{"HTTP_PROXY=http://host.docker.internal:3128", "NO_PROXY=localhost",
			"http_proxy=http://host.docker.internal:3128", "no_proxy=localhost"}
		if got := proxyVars(env(t, e)); !slices.Equal(got, want) {
			t.Errorf("container env has %q, want %q", got, want)
		}
	})
}
