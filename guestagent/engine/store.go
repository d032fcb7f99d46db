//go:build linux

package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berthdesktop/berth/internal/atomicfile"
	"os"
	"path/filepath"
)

// The metadata store keeps one JSON document per container in
// ROOT/containers/ID/config.v2.json, written atomically (temp, fsync,
// rename, fsync dir) once per state change.

const metaFile = "config.v2.json"

// saveMeta persists m into its container directory.
func saveMeta(dir string, m *meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", m.ID, err)
	}
	return atomicfile.Write(filepath.Join(dir, metaFile), data, 0o600)
}

// loadMetas reads every container directory under root. Directories without
// a readable document are reported in bad and skipped.
func loadMetas(root string) (ms []*meta, bad []error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{fmt.Errorf("read containers dir: %w", err)}
	}
	for _, e := range entries {
		if !e.IsDir() || !isFullID(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, e.Name(), metaFile))
		if err != nil {
			bad = append(bad, fmt.Errorf("container %s: %w", e.Name(), err))
			continue
		}
		var m meta
		if err := json.Unmarshal(data, &m); err != nil {
			bad = append(bad, fmt.Errorf("container %s: decode: %w", e.Name(), err))
			continue
		}
		if m.ID != e.Name() || m.Config == nil || m.HostConfig == nil {
			bad = append(bad, fmt.Errorf("container %s: inconsistent metadata", e.Name()))
			continue
		}
		ms = append(ms, &m)
	}
	return ms, bad
}

func isFullID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
