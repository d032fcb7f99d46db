//go:build linux && !amd64

package qemu

// kvmWorks: on this architecture opening /dev/kvm read-write is the test.
func kvmWorks() bool { return opensReadWrite("/dev/kvm") }
