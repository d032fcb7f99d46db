package machinetest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/berthdesktop/berth/app/machine"
)

// Image returns the kernel and initrd of the VM image `make vmimage` built
// for arch (the host's when empty): build/vm/<arch> in the module, or the
// folder $BERTH_VM_IMAGE_DIR names (CI downloads the image there). It skips
// t when the image is absent.
func Image(t testing.TB, arch machine.Arch) (kernel, initrd string) {
	t.Helper()
	if arch == "" {
		arch = machine.Arch(runtime.GOARCH)
	}
	dir := os.Getenv("BERTH_VM_IMAGE_DIR")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Skipf("no VM image: %v", err)
		}
		dir = filepath.Join(root, "build", "vm", string(arch))
	}
	kernel = firstFile(dir, "vmlinuz", "kernel", "Image")
	initrd = firstFile(dir, "initrd", "initrd.img", "initramfs", "initrd.cpio.gz")
	if kernel == "" || initrd == "" {
		t.Skipf("no %s VM image in %s (run make vmimage)", arch, dir)
	}
	return kernel, initrd
}

// firstFile returns the first of names that exists in dir, or "".
func firstFile(dir string, names ...string) string {
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// moduleRoot finds the folder holding go.mod above the working directory
// (a package's folder while its tests run).
func moduleRoot() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	for dir := start; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s: %w", start, os.ErrNotExist)
		}
		dir = parent
	}
}
