package daemonjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strings"

	units "github.com/docker/go-units"

	"github.com/berthdesktop/berth/guestagent/logs"
)

// keySpec is how one key is read into a Config and written back.
type keySpec struct {
	decode func(c *Config, key string, raw json.RawMessage) error
	value  func(c *Config) any
}

// keys holds every key Berth accepts.
var keys = map[string]keySpec{
	"debug": {
		func(c *Config, k string, r json.RawMessage) error { return decodeAs(k, r, &c.Debug, "a boolean") },
		func(c *Config) any { return c.Debug },
	},
	"log-level": {decodeLogLevel, func(c *Config) any { return c.LogLevel }},
	"log-driver": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.LogDriver, "a string"); err != nil {
				return err
			}
			if c.LogDriver != "json-file" {
				return fmt.Errorf("invalid value for %q: log driver %q is not supported (only json-file)", k, c.LogDriver)
			}
			return nil
		},
		func(c *Config) any { return c.LogDriver },
	},
	"log-opts": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.LogOpts, "an object of strings"); err != nil {
				return err
			}
			if _, err := logs.ParseOptions(c.LogOpts); err != nil {
				return fmt.Errorf("invalid value for %q: %w", k, err)
			}
			return nil
		},
		func(c *Config) any { return c.LogOpts },
	},
	"default-ulimits": {decodeUlimits, func(c *Config) any { return c.DefaultUlimits }},
	"labels":          {decodeLabels, func(c *Config) any { return c.Labels }},
	"init": {
		func(c *Config, k string, r json.RawMessage) error { return decodeAs(k, r, &c.Init, "a boolean") },
		func(c *Config) any { return c.Init },
	},
	"default-shm-size": {decodeShmSize, func(c *Config) any { return c.DefaultShmSize }},
	"hosts": {
		func(c *Config, k string, r json.RawMessage) error {
			return decodeAs(k, r, &c.Hosts, "an array of strings")
		},
		func(c *Config) any { return c.Hosts },
	},
	"data-root": {
		func(c *Config, k string, r json.RawMessage) error { return decodeAs(k, r, &c.DataRoot, "a string") },
		func(c *Config) any { return c.DataRoot },
	},
	"exec-root": {
		func(c *Config, k string, r json.RawMessage) error { return decodeAs(k, r, &c.ExecRoot, "a string") },
		func(c *Config) any { return c.ExecRoot },
	},
	"experimental": {
		func(c *Config, k string, r json.RawMessage) error {
			return decodeAs(k, r, &c.Experimental, "a boolean")
		},
		func(c *Config) any { return c.Experimental },
	},
	"storage-driver": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.StorageDriver, "a string"); err != nil {
				return err
			}
			if c.StorageDriver != "overlay2" && c.StorageDriver != "" {
				return fmt.Errorf("invalid value for %q: storage driver %q is not supported (only overlay2)", k, c.StorageDriver)
			}
			return nil
		},
		func(c *Config) any { return c.StorageDriver },
	},
	"insecure-registries": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.InsecureRegistries, "an array of strings"); err != nil {
				return err
			}
			for _, s := range c.InsecureRegistries {
				if err := CheckInsecureRegistry(s); err != nil {
					return fmt.Errorf("invalid value for %q: %w", k, err)
				}
			}
			return nil
		},
		func(c *Config) any { return c.InsecureRegistries },
	},
	"registry-mirrors": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.RegistryMirrors, "an array of strings"); err != nil {
				return err
			}
			for _, m := range c.RegistryMirrors {
				if err := CheckMirror(m); err != nil {
					return fmt.Errorf("invalid value for %q: %w", k, err)
				}
			}
			return nil
		},
		func(c *Config) any { return c.RegistryMirrors },
	},
	"proxies": {decodeProxies, func(c *Config) any { return c.Proxies }},
	"max-concurrent-downloads": {
		func(c *Config, k string, r json.RawMessage) error {
			return decodePositive(k, r, &c.MaxConcurrentDownloads)
		},
		func(c *Config) any { return c.MaxConcurrentDownloads },
	},
	"max-concurrent-uploads": {
		func(c *Config, k string, r json.RawMessage) error {
			return decodePositive(k, r, &c.MaxConcurrentUploads)
		},
		func(c *Config) any { return c.MaxConcurrentUploads },
	},
	"bridge": {
		func(c *Config, k string, r json.RawMessage) error {
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
		func(c *Config) any { return c.Bridge },
	},
	"bip":                   {decodeBip, func(c *Config) any { return c.Bip }},
	"mtu":                   {decodeMTU, func(c *Config) any { return c.MTU }},
	"default-address-pools": {decodePools, poolsValue},
	"host-gateway-ip": {
		func(c *Config, k string, r json.RawMessage) error {
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
		func(c *Config) any { return c.HostGatewayIP.String() },
	},
	"registry-certs-dir": {
		func(c *Config, k string, r json.RawMessage) error {
			if err := decodeAs(k, r, &c.RegistryCertsDir, "a string"); err != nil {
				return err
			}
			// The directory is a path in the engine's (Linux) file system,
			// whatever OS reads the document.
			if !path.IsAbs(c.RegistryCertsDir) {
				return fmt.Errorf("invalid value for %q: %q is not an absolute path", k, c.RegistryCertsDir)
			}
			return nil
		},
		func(c *Config) any { return c.RegistryCertsDir },
	},
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

func decodeLogLevel(c *Config, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.LogLevel, "a string"); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error", "fatal":
		return nil
	}
	return fmt.Errorf("invalid value for %q: unable to parse logging level: %s", key, c.LogLevel)
}

func decodeLabels(c *Config, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.Labels, "an array of strings"); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, l := range c.Labels {
		name, value, ok := strings.Cut(l, "=")
		if !ok || name == "" {
			return fmt.Errorf("invalid value for %q: label %q must be key=value", key, l)
		}
		// dockerd refuses one label given two values.
		if v, ok := seen[name]; ok && v != value {
			return fmt.Errorf("invalid value for %q: label %q is given two values (%q and %q)", key, name, v, value)
		}
		seen[name] = value
	}
	return nil
}

func decodeUlimits(c *Config, key string, raw json.RawMessage) error {
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

func decodeShmSize(c *Config, key string, raw json.RawMessage) error {
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

func decodeProxies(c *Config, key string, raw json.RawMessage) error {
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

// CheckInsecureRegistry checks one insecure-registries entry as dockerd
// does: a host, host:port or CIDR such as 10.0.0.0/8, never a URL.
func CheckInsecureRegistry(s string) error {
	if strings.Contains(s, "://") {
		return fmt.Errorf("insecure registry %s should not contain '://'", s)
	}
	return nil
}

// CheckMirror checks one registry-mirrors entry as dockerd does: an
// http(s) URL with a host and no path beyond "/".
func CheckMirror(s string) error {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil {
		return fmt.Errorf("invalid mirror: %q is not a valid URI: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid mirror: unsupported scheme %q in %q", u.Scheme, s)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("invalid mirror: %q must be scheme://host[:port] with no path, query or credentials", s)
	}
	return nil
}

// ParseBip parses dockerd's bip: the bridge's own address with the
// network's prefix length, e.g. 172.17.0.1/16.
func ParseBip(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address with a prefix length (like 172.17.0.1/16)", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q: only IPv4 is supported", s)
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%q: the prefix length must be between 8 and 30", s)
	}
	if p.Addr() == p.Masked().Addr() {
		return netip.Prefix{}, fmt.Errorf("%q: the bridge needs a host address, not the network address", s)
	}
	return p, nil
}

func decodeBip(c *Config, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.Bip, "a string"); err != nil {
		return err
	}
	if _, err := ParseBip(c.Bip); err != nil {
		return fmt.Errorf("invalid value for %q: %w", key, err)
	}
	return nil
}

func decodeMTU(c *Config, key string, raw json.RawMessage) error {
	if err := decodeAs(key, raw, &c.MTU, "an integer"); err != nil {
		return err
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return fmt.Errorf("invalid value for %q: %d is not between 68 and 65535", key, c.MTU)
	}
	return nil
}

// poolJSON is a default-address-pools entry as written.
type poolJSON struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// CheckPool checks one default-address-pools entry: an IPv4 base and a
// subnet size between the base's prefix length and /30.
func CheckPool(p Pool) error {
	if !p.Base.IsValid() || !p.Base.Addr().Is4() {
		return fmt.Errorf("base %s: an IPv4 prefix is required", p.Base)
	}
	if p.Size < p.Base.Bits() || p.Size > 30 {
		return fmt.Errorf("size %d: must be between the base's prefix length %d and 30", p.Size, p.Base.Bits())
	}
	return nil
}

// decodePools reads default-address-pools: [{"base": "10.10.0.0/16",
// "size": 24}, ...].
func decodePools(c *Config, key string, raw json.RawMessage) error {
	var ps []poolJSON
	if err := decodeAs(key, raw, &ps, `an array of {"base": "CIDR", "size": N}`); err != nil {
		return err
	}
	if len(ps) == 0 {
		return fmt.Errorf("invalid value for %q: at least one pool is required", key)
	}
	c.DefaultAddressPools = nil
	for i, p := range ps {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil {
			return fmt.Errorf("invalid value for %q: pool %d: base %q is not a CIDR prefix", key, i, p.Base)
		}
		pool := Pool{Base: base.Masked(), Size: p.Size}
		if err := CheckPool(pool); err != nil {
			return fmt.Errorf("invalid value for %q: pool %d: %w", key, i, err)
		}
		c.DefaultAddressPools = append(c.DefaultAddressPools, pool)
	}
	return nil
}

func poolsValue(c *Config) any {
	ps := make([]poolJSON, len(c.DefaultAddressPools))
	for i, p := range c.DefaultAddressPools {
		ps[i] = poolJSON{Base: p.Base.String(), Size: p.Size}
	}
	return ps
}
