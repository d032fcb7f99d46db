package builder

import (
	"archive/tar"
	"io/fs"
	"syscall"
)

// fileOwner is the uid and gid of a file on disk or in a memFS.
func fileOwner(fi fs.FileInfo) (int, int) {
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return int(st.Uid), int(st.Gid)
	case *tar.Header:
		return st.Uid, st.Gid
	}
	return 0, 0
}
