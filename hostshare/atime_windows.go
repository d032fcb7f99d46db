package hostshare

import (
	"os"
	"syscall"
	"time"
)

// atime is a file's access time (its modification time when unknown).
func atime(fi os.FileInfo) time.Time {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok {
		return time.Unix(0, d.LastAccessTime.Nanoseconds())
	}
	return fi.ModTime()
}
