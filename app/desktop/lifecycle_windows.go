package desktop

import "io/fs"

// diskUsage is fi's size (sparse files are not told apart here).
func diskUsage(fi fs.FileInfo) int64 { return fi.Size() }

// linkDirs is empty: on Windows the installer puts berth.exe on PATH
// itself; no link to it is made.
func linkDirs() []string { return nil }
