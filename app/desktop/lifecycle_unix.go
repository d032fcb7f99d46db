//go:build !windows

package desktop

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// diskUsage is the space fi takes on disk: the blocks in use, so that a
// sparse data disk counts what it holds, not its size.
func diskUsage(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// linkDirs are the folders a link to the berth command would be made in:
// ~/.local/bin and /usr/local/bin.
func linkDirs() []string {
	dirs := []string{"/usr/local/bin"}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append([]string{filepath.Join(h, ".local", "bin")}, dirs...)
	}
	return dirs
}
