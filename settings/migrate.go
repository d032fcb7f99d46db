package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// v0 is the document before settings were versioned: app/desktop's
// Settings as encoding/json writes it ({"CPUs": 2, "MemoryMiB": 2048,
// "DiskBytes": 68719476736, "Shares": [...], "VMDir": "..."}), with no
// version key. VMDir names where the VM image is found, which is not a
// setting (the --vm-dir flag and BERTH_VM_DIR choose it), so it is dropped.
type v0 struct {
	CPUs      int
	MemoryMiB int
	DiskBytes int64
	Shares    []string
	VMDir     string
}

// migrateV0 turns a v0 document into the current one over defaults: the
// disk rounds up to whole GiB (a disk is never shrunk); a value v0 left
// out keeps its default.
func migrateV0(data []byte, defaults *Document) (*Document, error) {
	var old v0
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&old); err != nil {
		return nil, fmt.Errorf("settings: the document has no version and is not a version 0 document: %w", err)
	}
	d := defaults.Clone()
	d.Version = Version
	if old.CPUs != 0 {
		d.Resources.CPUs = old.CPUs
	}
	if old.MemoryMiB != 0 {
		d.Resources.MemoryMiB = old.MemoryMiB
	}
	if old.DiskBytes != 0 {
		d.Resources.DiskGiB = int((old.DiskBytes + 1<<30 - 1) >> 30)
	}
	if old.Shares != nil {
		d.FileSharing.Paths = append([]string{}, old.Shares...)
	}
	return d, nil
}
