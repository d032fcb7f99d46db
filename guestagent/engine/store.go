//go:build linux

package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The metadata store keeps one JSON document per container in
// ROOT/containers/ID/config.v2.json, written atomically (temp, fsync,
// rename, fsync dir) once per state change.

const metaFile = "config.v2.json"

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}

// saveMeta persists m into its container directory.
func saveMeta(dir string, m *meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", m.ID, err)
	}
	return writeFileAtomic(filepath.Join(dir, metaFile), data)
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
