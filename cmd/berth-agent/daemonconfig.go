//go:build linux

package main

import (
	"fmt"
	"os"

	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/settings/daemonjson"
)

// daemonConfig is daemon.json as the engine uses it: the document parsed
// and checked by settings/daemonjson, with the address pools in the
// network package's terms.
type daemonConfig struct {
	daemonjson.Config

	// DefaultAddressPools are the document's pools as network.Pool.
	DefaultAddressPools []network.Pool

	// set records which keys the file contained.
	set map[string]bool
}

// parseDaemonConfig decodes daemon.json (settings/daemonjson owns the
// rules: unknown keys, types, values, conflicts, each error with its key
// and line).
func parseDaemonConfig(data []byte) (*daemonConfig, error) {
	doc, err := daemonjson.Parse(data)
	if err != nil {
		return nil, err
	}
	c := &daemonConfig{Config: *doc, set: map[string]bool{}}
	for _, k := range doc.Keys() {
		c.set[k] = true
	}
	for _, p := range doc.DefaultAddressPools {
		c.DefaultAddressPools = append(c.DefaultAddressPools, network.Pool{Base: p.Base, Size: p.Size})
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
