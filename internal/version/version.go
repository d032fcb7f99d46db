// Package version owns the build identity of Berth's binaries: the version
// string stamped at link time (-ldflags -X) and the Go toolchain it was
// built with.
package version

import "runtime"

// Version is set at link time:
//
//	-ldflags "-X github.com/berthdesktop/berth/internal/version.Version=v1.2.3"
//
// Builds without the flag report "dev".
var Version = "dev"

// String is the one-line identity of a binary: "NAME VERSION (GO OS/ARCH)".
func String(name string) string {
	return name + " " + Version + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
