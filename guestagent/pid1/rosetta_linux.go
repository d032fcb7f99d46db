package pid1

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// RosettaMount is where the Rosetta share (berth.rosetta) is mounted,
// read-only; its rosetta binary is the x86-64 handler's interpreter.
const RosettaMount = "/run/rosetta"

// BinfmtMiscDir is binfmt_misc's usual mount point.
const BinfmtMiscDir = "/proc/sys/fs/binfmt_misc"

// binfmtMiscMagic is binfmt_misc's statfs f_type ("BINM").
const binfmtMiscMagic = 0x42494e4d

// setupRosetta mounts the Rosetta share and registers Rosetta as the
// handler of x86-64 binaries. binfmt_misc is a module: the caller waits for
// the engine's module list, which has it.
func (g *guest) setupRosetta() error {
	if err := mount(g.params.Rosetta, RosettaMount, "virtiofs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("rosetta share: %w", err)
	}
	g.mu.Lock()
	g.mounts = append(g.mounts, RosettaMount)
	g.mu.Unlock()
	if err := mountBinfmtMisc(BinfmtMiscDir); err != nil {
		return err
	}
	return registerBinfmt(BinfmtMiscDir, rosettaEntry(filepath.Join(RosettaMount, "rosetta")))
}

// mountBinfmtMisc mounts binfmt_misc at dir unless it is mounted there.
func mountBinfmtMisc(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == binfmtMiscMagic {
		return nil
	}
	return mount("binfmt_misc", dir, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// registerBinfmt registers e with the binfmt_misc mounted at dir, first
// removing an entry of the same name.
func registerBinfmt(dir string, e binfmtEntry) error {
	line, err := e.registration()
	if err != nil {
		return err
	}
	if err := unregisterBinfmt(dir, e.Name); err != nil {
		return err
	}
	// One write: the kernel parses each write as one registration.
	if err := writeExisting(filepath.Join(dir, "register"), line); err != nil {
		return fmt.Errorf("register binfmt_misc entry %s: %w", e.Name, err)
	}
	return nil
}

// writeExisting writes s to the file at name in one write; binfmt_misc's
// files cannot be created.
func writeExisting(name, s string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// unregisterBinfmt removes the entry name; none is not an error.
func unregisterBinfmt(dir, name string) error {
	err := writeExisting(filepath.Join(dir, name), "-1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove binfmt_misc entry %s: %w", name, err)
	}
	return nil
}
