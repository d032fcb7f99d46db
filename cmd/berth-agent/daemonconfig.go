//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	units "github.com/docker/go-units"

	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/registry"
)

// daemonConfig is the part of dockerd's daemon.json the engine reads.
type daemonConfig struct {
	Debug          bool
	LogLevel       string
	LogDriver      string
	LogOpts        map[string]string
	DefaultUlimits map[string]*units.Ulimit
	Labels         []string
	Init           bool
	DefaultShmSize int64
	Hosts          []string
	DataRoot       string
	ExecRoot       string

	// Registries: see registryConfig.
	InsecureRegistries     []string
	RegistryMirrors        []string
	Proxies                daemonProxies
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	RegistryCertsDir       string

	// The default bridge and the pools of user-defined networks
	// (network.go).
	Bridge              string
	Bip                 string
	MTU                 int
	DefaultAddressPools []network.Pool
	HostGatewayIP       netip.Addr

	// Accepted for compatibility with existing daemon.json files; they do
	// not change the engine's behaviour (yet).
	Experimental  bool
	StorageDriver string

	// set records which keys the file contained.
	set map[string]bool
}

// daemonKeys maps every accepted key to its decoder.
var daemonKeys = map[string]func(c *daemonConfig, key string, raw json.RawMessage) error{
	"debug":     func(c *daemonConfig, k string, r json.RawMessage) error { return decodeAs(k, r, &c.Debug, "a boolean") },
	"log-level": func(c *daemonConfig, k string, r json.RawMessage) error { return decodeLogLevel(c, k, r) },
	"log-driver": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.LogDriver, "a string"); err != nil {
			return err
		}
		if c.LogDriver != "json-file" {
			return fmt.Errorf("invalid value for %q: log driver %q is not supported (only json-file)", k, c.LogDriver)
		}
		return nil
	},
	"log-opts": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.LogOpts, "an object of strings"); err != nil {
			return err
		}
		if _, err := logs.ParseOptions(c.LogOpts); err != nil {
			return fmt.Errorf("invalid value for %q: %w", k, err)
		}
		return nil
	},
	"default-ulimits": func(c *daemonConfig, k string, r json.RawMessage) error { return decodeUlimits(c, k, r) },
	"labels": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.Labels, "an array of strings"); err != nil {
			return err
		}
		for _, l := range c.Labels {
			if key, _, ok := strings.Cut(l, "="); !ok || key == "" {
				return fmt.Errorf("invalid value for %q: label %q must be key=value", k, l)
			}
		}
		return nil
	},
	"init":             func(c *daemonConfig, k string, r json.RawMessage) error { return decodeAs(k, r, &c.Init, "a boolean") },
	"default-shm-size": func(c *daemonConfig, k string, r json.RawMessage) error { return decodeShmSize(c, k, r) },
	"hosts": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodeAs(k, r, &c.Hosts, "an array of strings")
	},
	"data-root": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodeAs(k, r, &c.DataRoot, "a string")
	},
	"exec-root": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodeAs(k, r, &c.ExecRoot, "a string")
	},
	"experimental": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodeAs(k, r, &c.Experimental, "a boolean")
	},
	"storage-driver": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.StorageDriver, "a string"); err != nil {
			return err
		}
		if c.StorageDriver != "overlay2" && c.StorageDriver != "" {
			return fmt.Errorf("invalid value for %q: storage driver %q is not supported (only overlay2)", k, c.StorageDriver)
		}
		return nil
	},
	"insecure-registries": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.InsecureRegistries, "an array of strings"); err != nil {
			return err
		}
		if _, err := registry.New(registry.Config{Insecure: c.InsecureRegistries}); err != nil {
			return fmt.Errorf("invalid value for %q: %w", k, err)
		}
		return nil
	},
	"registry-mirrors": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.RegistryMirrors, "an array of strings"); err != nil {
			return err
		}
		for _, m := range c.RegistryMirrors {
			if _, err := registry.ParseMirror(m); err != nil {
				return fmt.Errorf("invalid value for %q: %w", k, err)
			}
		}
		return nil
	},
	"proxies": func(c *daemonConfig, k string, r json.RawMessage) error { return decodeProxies(c, k, r) },
	"max-concurrent-downloads": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodePositive(k, r, &c.MaxConcurrentDownloads)
	},
	"max-concurrent-uploads": func(c *daemonConfig, k string, r json.RawMessage) error {
		return decodePositive(k, r, &c.MaxConcurrentUploads)
	},
	"bridge": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.Bridge, "a string"); err != nil {
			return err
		}
		if c.Bridge == "none" {
			return fmt.Errorf("invalid value for %q: running without a bridge is not supported", k)
		}
		if len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ \t") {
			return fmt.Errorf("invalid value for %q: %q is not an interface name", k, c.Bridge)
		}
		return nil
	},
	"bip":                   decodeBip,
	"mtu":                   decodeMTU,
	"default-address-pools": decodePools,
	"host-gateway-ip": func(c *daemonConfig, k string, r json.RawMessage) error {
		var s string
		if err := decodeAs(k, r, &s, "a string"); err != nil {
			return err
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return fmt.Errorf("invalid value for %q: %q is not an IPv4 address", k, s)
		}
		c.HostGatewayIP = a
		return nil
	},
	"registry-certs-dir": func(c *daemonConfig, k string, r json.RawMessage) error {
		if err := decodeAs(k, r, &c.RegistryCertsDir, "a string"); err != nil {
			return err
		}
		if !filepath.IsAbs(c.RegistryCertsDir) {
			return fmt.Errorf("invalid value for %q: %q is not an absolute path", k, c.RegistryCertsDir)
		}
		return nil
	},
}

// parseDaemonConfig decodes daemon.json. Unknown keys are refused with
// dockerd's message; a value of the wrong type names its key.
func parseDaemonConfig(data []byte) (*daemonConfig, error) {
	c := &daemonConfig{set: map[string]bool{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("invalid daemon configuration: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid daemon configuration: trailing data after the JSON object")
	}
	if raw == nil {
		return nil, errors.New("invalid daemon configuration: must be a JSON object")
	}
	var unknown []string
	for k := range raw {
		if _, ok := daemonKeys[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := daemonKeys[k](c, k, raw[k]); err != nil {
			return nil, err
		}
		c.set[k] = true
	}
	return c, nil
}

// loadDaemonConfig reads and parses the file at path.
func loadDaemonConfig(path string) (*daemonConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read daemon configuration: %w", err)
	}
	c, err := parseDaemonConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func decodeAs(key string, raw json.RawMessage, dst any, want string) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf("invalid value for %q: expected %s, got null", key, want)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("invalid value for %q: expected %s, got %s", key, want, jsonKind(raw))
	}
	return nil
}

func decodeLogLevel(c *daemonConfig, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.LogLevel, "a string"); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error", "fatal":
		return nil
	}
	return fmt.Errorf("invalid value for %q: unable to parse logging level: %s", key, c.LogLevel)
}

func decodeUlimits(c *daemonConfig, key string, raw json.RawMessage) error {
	var m map[string]*units.Ulimit
	if err := decodeAs(key, raw, &m, "an object of ulimits"); err != nil {
		return err
	}
	for name, u := range m {
		if u == nil {
			return fmt.Errorf("invalid value for %q: ulimit %q is null", key, name)
		}
		if u.Name == "" {
			u.Name = name
		}
		if _, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard)); err != nil {
			return fmt.Errorf("invalid value for %q: %w", key, err)
		}
	}
	c.DefaultUlimits = m
	return nil
}

func decodeShmSize(c *daemonConfig, key string, raw json.RawMessage) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		n, err := units.RAMInBytes(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid value for %q: invalid size %q", key, s)
		}
		c.DefaultShmSize = n
		return nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil || n <= 0 {
		return fmt.Errorf("invalid value for %q: expected a size such as \"64M\", got %s", key, jsonKind(raw))
	}
	c.DefaultShmSize = n
	return nil
}

// daemonProxies is daemon.json's "proxies" object.
type daemonProxies struct {
	HTTPProxy  string `json:"http-proxy"`
	HTTPSProxy string `json:"https-proxy"`
	NoProxy    string `json:"no-proxy"`
}

func decodeProxies(c *daemonConfig, key string, raw json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := decodeAs(key, raw, &m, "an object"); err != nil {
		return err
	}
	for k, v := range m {
		var dst *string
		switch k {
		case "http-proxy":
			dst = &c.Proxies.HTTPProxy
		case "https-proxy":
			dst = &c.Proxies.HTTPSProxy
		case "no-proxy":
			dst = &c.Proxies.NoProxy
		default:
			return fmt.Errorf("invalid value for %q: unknown key %q (want http-proxy, https-proxy, no-proxy)", key, k)
		}
		if err := decodeAs(key+"."+k, v, dst, "a string"); err != nil {
			return err
		}
	}
	return nil
}

func decodePositive(key string, raw json.RawMessage, dst *int) error {
	if err := decodeAs(key, raw, dst, "a number"); err != nil {
		return err
	}
	if *dst <= 0 {
		return fmt.Errorf("invalid value for %q: must be a positive number, got %d", key, *dst)
	}
	return nil
}

// defaultRegistryCertsDir is where per-registry CAs and client
// certificates live when registry-certs-dir is not set, as dockerd's.
const defaultRegistryCertsDir = "/etc/docker/certs.d"

// registryConfig turns the registry keys of daemon.json into the registry
// client's configuration.
func (c *daemonConfig) registryConfig(userAgent string) registry.Config {
	certs := c.RegistryCertsDir
	if certs == "" {
		certs = defaultRegistryCertsDir
	}
	return registry.Config{
		Insecure:               c.InsecureRegistries,
		Mirrors:                c.RegistryMirrors,
		HTTPProxy:              c.Proxies.HTTPProxy,
		HTTPSProxy:             c.Proxies.HTTPSProxy,
		NoProxy:                c.Proxies.NoProxy,
		CertsDir:               certs,
		MaxConcurrentDownloads: c.MaxConcurrentDownloads,
		MaxConcurrentUploads:   c.MaxConcurrentUploads,
		UserAgent:              userAgent,
	}
}
