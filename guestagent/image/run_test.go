//go:build linux

package image

import (
	"os/exec"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// chrootRun runs a command chrooted into root.
func chrootRun(root string, argv ...string) ([]byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	return cmd.CombinedOutput()
}

func mustDigest(t testing.TB, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
