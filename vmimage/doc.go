// Command vmimage assembles the Berth VM image for one or more
// architectures: Debian's cloud kernel, an initrd (cpio newc) holding the
// static agent (the engine), berth-init as /init (PID 1), the ordered kernel modules, mke2fs and resize2fs with their
// libraries, and a manifest.json naming every input package with its version
// and every output with its sha256. The build is reproducible: the same
// inputs give the same digests.
//
// Usage:
//
//	go run ./vmimage [-out build/vm] [-cache build/vm/cache] [-version V] [amd64] [arm64]
package main
