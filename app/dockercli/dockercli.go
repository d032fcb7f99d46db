// Package dockercli owns Berth's integration with the user's docker CLI
// configuration: the docker context "berth" pointing at Berth's docker
// socket, written the way the CLI stores contexts (under
// $DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json), and, only
// when asked, making it the current context in config.json.
package dockercli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ContextName is the docker context Berth manages.
const ContextName = "berth"

// ConfigDir is the docker CLI's configuration folder: $DOCKER_CONFIG, or
// ~/.docker.
func ConfigDir() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("docker config folder: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// HostURL is the docker endpoint for Berth's socket: unix://PATH, or
// npipe://PATH for a Windows named pipe.
func HostURL(socket string) string {
	if runtime.GOOS == "windows" || strings.HasPrefix(socket, `\\.\pipe\`) {
		return "npipe://" + filepath.ToSlash(socket)
	}
	return "unix://" + socket
}

// contextMeta is the CLI's meta.json of a context.
type contextMeta struct {
	Name      string                     `json:"Name"`
	Metadata  map[string]any             `json:"Metadata"`
	Endpoints map[string]contextEndpoint `json:"Endpoints"`
}

type contextEndpoint struct {
	Host          string `json:"Host"`
	SkipTLSVerify bool   `json:"SkipTLSVerify"`
}

func metaPath(dir, name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
}

// EnsureContext creates or updates the context "berth" in the configuration
// folder dir (ConfigDir when empty) so that its docker endpoint is host
// (see HostURL). It does not change the current context; Use does.
func EnsureContext(dir, host string) error {
	if dir == "" {
		var err error
		if dir, err = ConfigDir(); err != nil {
			return err
		}
	}
	meta := contextMeta{
		Name:      ContextName,
		Metadata:  map[string]any{"Description": "Berth"},
		Endpoints: map[string]contextEndpoint{"docker": {Host: host}},
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("docker context %s: %w", ContextName, err)
	}
	path := metaPath(dir, ContextName)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("docker context %s: %w", ContextName, err)
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return fmt.Errorf("docker context %s: %w", ContextName, err)
	}
	return nil
}

// ContextHost returns the docker endpoint of the context "berth", or
// os.ErrNotExist wrapped when there is none.
func ContextHost(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = ConfigDir(); err != nil {
			return "", err
		}
	}
	b, err := os.ReadFile(metaPath(dir, ContextName))
	if err != nil {
		return "", fmt.Errorf("docker context %s: %w", ContextName, err)
	}
	var meta contextMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return "", fmt.Errorf("docker context %s: %w", ContextName, err)
	}
	return meta.Endpoints["docker"].Host, nil
}

// RemoveContext deletes the context "berth"; when it was the current
// context, the CLI goes back to its default.
func RemoveContext(dir string) error {
	if dir == "" {
		var err error
		if dir, err = ConfigDir(); err != nil {
			return err
		}
	}
	cur, err := CurrentContext(dir)
	if err != nil {
		return err
	}
	if cur == ContextName {
		if err := Use(dir, ""); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(filepath.Dir(metaPath(dir, ContextName))); err != nil {
		return fmt.Errorf("remove docker context %s: %w", ContextName, err)
	}
	return nil
}

// CurrentContext reads currentContext from config.json ("" when unset).
func CurrentContext(dir string) (string, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return "", err
	}
	raw, ok := cfg["currentContext"]
	if !ok {
		return "", nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf("docker config %s: currentContext: %w", filepath.Join(dir, "config.json"), err)
	}
	return name, nil
}

// Use makes name the current context in config.json, keeping every other
// setting; "" goes back to the default context.
func Use(dir, name string) error {
	return updateConfig(dir, func(cfg map[string]json.RawMessage) {
		if name == "" {
			delete(cfg, "currentContext")
		} else {
			cfg["currentContext"], _ = json.Marshal(name)
		}
	})
}

// CredsStore is config.json's "credsStore" ("" when none is set).
func CredsStore(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = ConfigDir(); err != nil {
			return "", err
		}
	}
	cfg, err := readConfig(dir)
	if err != nil {
		return "", err
	}
	var s string
	if raw, ok := cfg["credsStore"]; ok {
		json.Unmarshal(raw, &s)
	}
	return s, nil
}

// SetCredsStore sets config.json's "credsStore" to helper (the docker CLI
// then keeps registry credentials with docker-credential-<helper>), or
// removes it when helper is "", keeping every other setting.
func SetCredsStore(dir, helper string) error {
	return updateConfig(dir, func(cfg map[string]json.RawMessage) {
		if helper == "" {
			delete(cfg, "credsStore")
		} else {
			cfg["credsStore"], _ = json.Marshal(helper)
		}
	})
}

// updateConfig reads config.json of dir ("" is ConfigDir), lets change
// edit its fields and writes it back atomically, keeping its mode.
func updateConfig(dir string, change func(map[string]json.RawMessage)) error {
	if dir == "" {
		var err error
		if dir, err = ConfigDir(); err != nil {
			return err
		}
	}
	cfg, err := readConfig(dir)
	if err != nil {
		return err
	}
	change(cfg)
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("docker config folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, "config.json")
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := atomicfile.Write(path, append(b, '\n'), mode); err != nil {
		return fmt.Errorf("docker config %s: %w", path, err)
	}
	return nil
}

// readConfig reads config.json as raw fields, so that writing it back keeps
// what Berth does not know (auths, credsStore, plugins...).
func readConfig(dir string) (map[string]json.RawMessage, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	cfg := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(b)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	if cfg == nil {
		cfg = map[string]json.RawMessage{}
	}
	return cfg, nil
}
