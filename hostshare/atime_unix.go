//go:build !windows

package hostshare

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// atime is a file's access time (its modification time when unknown).
func atime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		return time.Unix(st.Atim.Unix())
	}
	return fi.ModTime()
}
