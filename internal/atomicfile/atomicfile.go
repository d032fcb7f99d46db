// Package atomicfile owns replacing a file so that readers, and a crash at
// any point, see the old content or the new one, never a part: a temporary
// file beside it (".NAME.tmp-*"), written, given its mode, synced, renamed
// over the file, and the folder synced (where a folder can be).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempPattern is the name pattern of the temporary files, for callers that
// clean up after a crash (path.Base of the file in place of NAME).
const TempPattern = ".%s.tmp-*"

// Write replaces path with data, mode perm.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, fmt.Sprintf(TempPattern, filepath.Base(path)))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync the folder of %s: %w", path, err)
	}
	return nil
}
