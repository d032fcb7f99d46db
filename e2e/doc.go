// Package e2e owns Berth's end-to-end tests: they build the berth command,
// boot the real VM image (build/vm/<arch>, made by `make vmimage`) under
// QEMU with `berth start` in a temporary BERTH_HOME, and drive the guest's
// engine with the real docker CLI through the forwarded socket: images,
// containers, bind mounts under a shared folder, published ports on the
// host's loopback, cgroup v2 limits and OOM kills, and data kept on the data
// disk across a stop and start and across a hard kill of QEMU.
//
// The package has no code outside its tests; they need root, QEMU, the
// docker CLI and Debian's busybox-static, and skip naming what is missing.
package e2e
