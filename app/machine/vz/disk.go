package vz

import (
	"fmt"
	"os"
	"path/filepath"
)

// ensureDisk creates the raw disk at path as a sparse file of size bytes,
// or grows an existing one to size (APFS keeps the new part a hole), as the
// QEMU driver does. It never shrinks a disk. It reports whether the file
// grew. The framework cannot resize an attached disk, so a larger disk
// takes effect at the next start; the guest then grows its filesystem.
func ensureDisk(path string, size int64) (grew bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create disk folder for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("open disk %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat disk %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("disk %s is not a regular file", path)
	}
	if fi.Size() >= size {
		return false, nil
	}
	if err := f.Truncate(size); err != nil {
		return false, fmt.Errorf("grow disk %s to %d bytes: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("sync disk %s: %w", path, err)
	}
	return fi.Size() > 0, nil
}
