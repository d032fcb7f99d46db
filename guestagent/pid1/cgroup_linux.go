package pid1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where pid1 mounts cgroup2.
const cgroupRoot = "/sys/fs/cgroup"

// Leaf groups pid1 creates under the root.
const (
	initGroup   = "init"
	engineGroup = "engine"
)

// setupCgroup2 moves every process of the root group into a leaf group (the
// no-internal-process rule forbids processes in a group that delegates
// controllers) and enables every available controller in the root's
// subtree_control.
func setupCgroup2() error {
	for _, g := range []string{initGroup, engineGroup} {
		if err := os.MkdirAll(filepath.Join(cgroupRoot, g), 0o755); err != nil {
			return fmt.Errorf("make cgroup %s: %w", g, err)
		}
	}
	procs, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.procs"))
	if err != nil {
		return fmt.Errorf("read root cgroup.procs: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(procs))
	dst := filepath.Join(cgroupRoot, initGroup, "cgroup.procs")
	for sc.Scan() {
		pid := strings.TrimSpace(sc.Text())
		if pid == "" {
			continue
		}
		// Kernel threads cannot move (EINVAL); they do not count as members.
		if err := os.WriteFile(dst, []byte(pid), 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("move pid %s to cgroup %s: %w", pid, initGroup, err)
		}
	}
	ctrls, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read cgroup.controllers: %w", err)
	}
	line := EnableLine(string(ctrls))
	if line == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte(line), 0); err != nil {
		return fmt.Errorf("enable controllers %q: %w", line, err)
	}
	return nil
}

// EnableLine turns the contents of cgroup.controllers into the line that
// enables them all in cgroup.subtree_control.
func EnableLine(controllers string) string {
	var parts []string
	for _, c := range strings.Fields(controllers) {
		parts = append(parts, "+"+c)
	}
	return strings.Join(parts, " ")
}

// openEngineCgroup opens the engine's leaf group for CLONE_INTO_CGROUP.
func openEngineCgroup() (int, error) {
	fd, err := unix.Open(filepath.Join(cgroupRoot, engineGroup), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open engine cgroup: %w", err)
	}
	return fd, nil
}

// joinEngineCgroup moves a running process (all its threads) into the
// engine's cgroup.
func joinEngineCgroup(pid int) error {
	p := filepath.Join(cgroupRoot, engineGroup, "cgroup.procs")
	if err := os.WriteFile(p, []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move engine %d into %s: %w", pid, p, err)
	}
	return nil
}
