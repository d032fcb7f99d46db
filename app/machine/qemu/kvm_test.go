//go:build linux

package qemu

import (
	"os"
	"testing"
)

// TestKVMProbe runs the probe; both answers are valid, but it must answer
// and agree with whether /dev/kvm opens at all.
func TestKVMProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to open /dev/kvm")
	}
	works := kvmWorks()
	t.Logf("kvm usable: %v", works)
	if works && !opensReadWrite("/dev/kvm") {
		t.Fatal("kvm reported usable while /dev/kvm does not open")
	}
}
