package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Capabilities says which limits this host can enforce for containers.
type Capabilities struct {
	Memory    bool // memory.max
	Swap      bool // memory.swap.max
	CPU       bool // cpu.max (CFS quota and period)
	CPUShares bool // cpu.weight
	Pids      bool // pids.max
	CPUSet    bool // cpuset.cpus / cpuset.mems
	IO        bool // io.weight / io.max
	Freezer   bool // cgroup.freeze (pause)
	Devices   bool // eBPF device filters (always attached when rules are given)
}

// Warnings returns the messages dockerd gives when a limit in res cannot be
// enforced on this host and is discarded, in the order dockerd checks them.
func (c Capabilities) Warnings(res *specs.LinuxResources) []string {
	if res == nil {
		return nil
	}
	var w []string
	if res.Memory != nil {
		if res.Memory.Limit != nil && *res.Memory.Limit > 0 && !c.Memory {
			w = append(w, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
		}
		if res.Memory.Swap != nil && *res.Memory.Swap != 0 && c.Memory && !c.Swap {
			w = append(w, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
		}
		if res.Memory.Reservation != nil && *res.Memory.Reservation > 0 && !c.Memory {
			w = append(w, "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.")
		}
	}
	if res.CPU != nil {
		if res.CPU.Shares != nil && *res.CPU.Shares > 0 && !c.CPUShares {
			w = append(w, "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.")
		}
		if res.CPU.Period != nil && *res.CPU.Period > 0 && !c.CPU {
			w = append(w, "Your kernel does not support CPU CFS period or the cgroup is not mounted. Period discarded.")
		}
		if res.CPU.Quota != nil && *res.CPU.Quota > 0 && !c.CPU {
			w = append(w, "Your kernel does not support CPU CFS quota or the cgroup is not mounted. Quota discarded.")
		}
		if (res.CPU.Cpus != "" || res.CPU.Mems != "") && !c.CPUSet {
			w = append(w, "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.")
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit > 0 && !c.Pids {
		w = append(w, "Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded.")
	}
	if res.BlockIO != nil && res.BlockIO.Weight != nil && *res.BlockIO.Weight > 0 && !c.IO {
		w = append(w, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
	}
	return w
}

// Manager places containers in cgroups below one parent group of the
// cgroup2 hierarchy. It implements the runtime's CgroupManager.
type Manager struct {
	mount  string // cgroup2 mount point
	parent string // absolute path of the parent group
	caps   Capabilities
	ctrls  map[string]bool // controllers enabled for the children
}

// New finds the cgroup2 mount in /proc/self/mountinfo, creates the parent
// group name (e.g. "berth") below its root and enables in the parent's
// subtree_control every controller the parent is offered.
func New(name string) (*Manager, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	mp, err := FindMount(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return NewAt(mp, name)
}

// NewAt is New with the cgroup2 mount point given.
func NewAt(mount, name string) (*Manager, error) {
	if name == "" || strings.Contains(name, "..") {
		return nil, fmt.Errorf("cgroups: invalid parent group name %q", name)
	}
	m := &Manager{mount: mount, parent: filepath.Join(mount, name), ctrls: map[string]bool{}}
	// The root offers its controllers to its children through its
	// subtree_control; the root has no internal-process constraint.
	enableAll(mount)
	if err := os.Mkdir(m.parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroups: create parent group %s: %w", m.parent, err)
	}
	for _, c := range enableAll(m.parent) {
		m.ctrls[c] = true
	}
	_, statErr := os.Stat(filepath.Join(m.parent, "cgroup.freeze"))
	m.caps = Capabilities{
		Memory:    m.ctrls["memory"],
		Swap:      m.ctrls["memory"] && swapAccounting(m.parent),
		CPU:       m.ctrls["cpu"],
		CPUShares: m.ctrls["cpu"],
		Pids:      m.ctrls["pids"],
		CPUSet:    m.ctrls["cpuset"],
		IO:        m.ctrls["io"],
		Freezer:   statErr == nil,
		Devices:   deviceFiltersWork(),
	}
	slog.Debug("cgroups: ready", "parent", m.parent, "controllers", m.ctrls)
	return m, nil
}

// swapAccounting reports whether memory.swap.max exists, which it does only
// when the kernel accounts swap.
func swapAccounting(parent string) bool {
	_, err := os.Stat(filepath.Join(parent, "memory.swap.max"))
	return err == nil
}

// enableAll writes "+c" for every controller in dir's cgroup.controllers to
// its cgroup.subtree_control, one at a time so one refusal does not block the
// others, and returns the controllers that are enabled afterwards.
func enableAll(dir string) []string {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	for _, c := range strings.Fields(string(avail)) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			slog.Debug("cgroups: cannot enable controller", "group", dir, "controller", c, "err", err)
		}
	}
	on, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(on))
}

// Capabilities reports which limits this host can enforce.
func (m *Manager) Capabilities() Capabilities { return m.caps }

// Mount is the cgroup2 mount point in use.
func (m *Manager) Mount() string { return m.mount }

// Path is the cgroup directory of container id.
func (m *Manager) Path(id string) string { return filepath.Join(m.parent, id) }

func (m *Manager) dir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("cgroups: invalid container id %q", id)
	}
	return m.Path(id), nil
}

// Create makes the container's cgroup, applies res, and returns its path.
func (m *Manager) Create(id string, res *specs.LinuxResources) (string, error) {
	d, err := m.dir(id)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cgroups: create group for %s: %w", id, err)
	}
	if err := m.apply(d, res); err != nil {
		os.Remove(d)
		return "", err
	}
	return d, nil
}

// Update applies new limits to container id.
func (m *Manager) Update(id string, res *specs.LinuxResources) error {
	d, err := m.dir(id)
	if err != nil {
		return err
	}
	return m.apply(d, res)
}

// ConvertShares maps cgroup v1 cpu.shares [2, 262144] onto cgroup v2
// cpu.weight [1, 10000] linearly, as runc does; 0 means unset.
func ConvertShares(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// Setting is one file write of apply.
type Setting struct {
	Ctrl, File, Value string
}

// Settings returns the interface files and values that express res; a
// controller-less host skips them (see Capabilities).
func Settings(res *specs.LinuxResources) []Setting {
	if res == nil {
		return nil
	}
	var s []Setting
	if mem := res.Memory; mem != nil {
		if mem.Limit != nil && *mem.Limit != 0 {
			s = append(s, Setting{"memory", "memory.max", limitValue(*mem.Limit)})
			if mem.Swap != nil {
				switch {
				case *mem.Swap == -1:
					s = append(s, Setting{"memory", "memory.swap.max", "max"})
				case *mem.Swap == 0 || *mem.Limit == -1:
				case *mem.Swap >= *mem.Limit:
					// The spec's swap is memory+swap, as --memory-swap.
					s = append(s, Setting{"memory", "memory.swap.max", strconv.FormatInt(*mem.Swap-*mem.Limit, 10)})
				}
			}
		}
		if mem.Reservation != nil && *mem.Reservation != 0 {
			s = append(s, Setting{"memory", "memory.low", limitValue(*mem.Reservation)})
		}
	}
	if cpu := res.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			s = append(s, Setting{"cpu", "cpu.weight", strconv.FormatUint(ConvertShares(*cpu.Shares), 10)})
		}
		quota := cpu.Quota != nil && *cpu.Quota != 0
		period := cpu.Period != nil && *cpu.Period != 0
		if quota || period {
			q, p := "max", uint64(100000)
			if quota && *cpu.Quota > 0 {
				q = strconv.FormatInt(*cpu.Quota, 10)
			}
			if period {
				p = *cpu.Period
			}
			s = append(s, Setting{"cpu", "cpu.max", q + " " + strconv.FormatUint(p, 10)})
		}
		if cpu.Cpus != "" {
			s = append(s, Setting{"cpuset", "cpuset.cpus", cpu.Cpus})
		}
		if cpu.Mems != "" {
			s = append(s, Setting{"cpuset", "cpuset.mems", cpu.Mems})
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit != 0 {
		s = append(s, Setting{"pids", "pids.max", limitValue(*res.Pids.Limit)})
	}
	if res.BlockIO != nil && res.BlockIO.Weight != nil && *res.BlockIO.Weight != 0 {
		// blkio weight [10, 1000] -> io weight [1, 10000], as runc does.
		w := 1 + (uint64(*res.BlockIO.Weight)-10)*9999/990
		s = append(s, Setting{"io", "io.weight", "default " + strconv.FormatUint(w, 10)})
	}
	return s
}

func limitValue(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func (m *Manager) apply(dir string, res *specs.LinuxResources) error {
	if res != nil && len(res.Devices) > 0 {
		if err := attachDeviceFilter(dir, res.Devices); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	for _, st := range Settings(res) {
		if !m.ctrls[st.Ctrl] {
			continue // reported by Capabilities; dockerd discards these too
		}
		if err := os.WriteFile(filepath.Join(dir, st.File), []byte(st.Value), 0); err != nil {
			if st.File == "memory.swap.max" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("cgroups: set %s to %q in %s: %w", st.File, st.Value, dir, err)
		}
	}
	return nil
}

// Freeze stops every process of container id and returns once the kernel
// reports the group frozen.
func (m *Manager) Freeze(id string) error { return m.setFrozen(id, true) }

// Thaw resumes container id.
func (m *Manager) Thaw(id string) error { return m.setFrozen(id, false) }

func (m *Manager) setFrozen(id string, frozen bool) error {
	d, err := m.dir(id)
	if err != nil {
		return err
	}
	v, want := "0", "frozen 0"
	if frozen {
		v, want = "1", "frozen 1"
	}
	if err := os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroups: write cgroup.freeze of %s: %w", id, err)
	}
	if err := waitEvent(filepath.Join(d, "cgroup.events"), want, 10*time.Second); err != nil {
		return fmt.Errorf("cgroups: freeze %s=%s: %w", id, v, err)
	}
	return nil
}

// waitEvent waits until the cgroup.events file at path has the line want
// ("frozen 1", "populated 0"). The kernel signals changes of the file with
// POLLPRI, so this sleeps in poll(2) between reads.
func waitEvent(path, want string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 256)
	for {
		n, err := unix.Pread(int(f.Fd()), buf, 0)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if hasLine(buf[:n], want) {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s: no %q within %v", path, want, timeout)
		}
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll %s: %w", path, err)
		}
	}
}

func hasLine(b []byte, want string) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if sc.Text() == want {
			return true
		}
	}
	return false
}

// Frozen reports whether container id is frozen.
func (m *Manager) Frozen(id string) (bool, error) {
	d, err := m.dir(id)
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(d, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("cgroups: %w", err)
	}
	return hasLine(b, "frozen 1"), nil
}

// Pids lists the processes of container id and of its sub-groups.
func (m *Manager) Pids(id string) ([]int, error) {
	d, err := m.dir(id)
	if err != nil {
		return nil, err
	}
	var pids []int
	err = filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroups: list processes of %s: %w", id, err)
	}
	return pids, nil
}

// OOMKilled reports whether the kernel's OOM killer killed a process of
// container id.
func (m *Manager) OOMKilled(id string) bool {
	d, err := m.dir(id)
	if err != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join(d, "memory.events"))
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" && v != "0" {
			return true
		}
	}
	return false
}

// Delete kills what is left in container id's cgroup and removes it.
func (m *Manager) Delete(id string) error {
	d, err := m.dir(id)
	if err != nil {
		return err
	}
	if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if b, err := os.ReadFile(filepath.Join(d, "cgroup.events")); err == nil && !hasLine(b, "populated 0") {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0); err != nil {
			// Kernels before 5.14 have no cgroup.kill: thaw and kill one by one.
			os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
			pids, _ := m.Pids(id)
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if err := waitEvent(filepath.Join(d, "cgroup.events"), "populated 0", 10*time.Second); err != nil {
			return fmt.Errorf("cgroups: delete %s: %w", id, err)
		}
	}
	// Sub-groups the container made go first, deepest first.
	var dirs []string
	filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("cgroups: remove %s: %w", dirs[i], err)
		}
	}
	return nil
}
