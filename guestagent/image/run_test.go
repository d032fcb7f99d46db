package image

import (
	"os/exec"
	"syscall"
)

// chrootRun runs a command chrooted into root.
func chrootRun(root string, argv ...string) ([]byte, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	return cmd.CombinedOutput()
}
