package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConvertShares(t *testing.T) {
	tests := []struct{ in, want uint64 }{
		{0, 0}, {2, 1}, {1024, 39}, {262144, 10000}, {1, 1}, {1 << 40, 10000},
	}
	for _, tt := range tests {
		if got := ConvertShares(tt.in); got != tt.want {
			t.Errorf("ConvertShares(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSettings(t *testing.T) {
	tests := []struct {
		name string
		res  *specs.LinuxResources
		want []Setting
	}{
		{"nil", nil, nil},
		{"memory and swap", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20))}},
			[]Setting{{"memory", "memory.max", "67108864"}, {"memory", "memory.swap.max", "67108864"}}},
		{"unlimited swap", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(-1))}},
			[]Setting{{"memory", "memory.max", "67108864"}, {"memory", "memory.swap.max", "max"}}},
		{"cpus 1.5", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(150000)), Period: ptr(uint64(100000))}},
			[]Setting{{"cpu", "cpu.max", "150000 100000"}}},
		{"shares", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(512))}},
			[]Setting{{"cpu", "cpu.weight", "20"}}},
		{"pids", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(100))}},
			[]Setting{{"pids", "pids.max", "100"}}},
		{"pids unlimited", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}},
			[]Setting{{"pids", "pids.max", "max"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Settings(tt.res); !slices.Equal(got, tt.want) {
				t.Fatalf("Settings = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20))}, Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}
	if w := (Capabilities{}).Warnings(res); len(w) != 2 || !strings.Contains(w[0], "memory limit") || !strings.Contains(w[1], "pids limit") {
		t.Fatalf("Warnings without controllers = %q", w)
	}
	if w := (Capabilities{Memory: true, Pids: true}).Warnings(res); len(w) != 0 {
		t.Fatalf("Warnings with controllers = %q", w)
	}
}

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	m, err := New("berth-test-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Skipf("no usable cgroup2 hierarchy: %v", err)
	}
	t.Cleanup(func() { os.Remove(m.parent) })
	return m
}

func TestManagerLifecycle(t *testing.T) {
	m := newTestManager(t)
	dir, err := m.Create("c1", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(50))}})
	if err != nil {
		t.Fatal(err)
	}
	if m.caps.Pids {
		b, _ := os.ReadFile(filepath.Join(dir, "pids.max"))
		if strings.TrimSpace(string(b)) != "50" {
			t.Fatalf("pids.max = %q", b)
		}
	}
	cmd := exec.Command("/bin/sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids("c1")
	if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Fatalf("Pids = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
	if err := m.Freeze("c1"); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen("c1"); err != nil || !f {
		t.Fatalf("Frozen after Freeze = %v, %v", f, err)
	}
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if !strings.Contains(string(stat), ") S ") && !strings.Contains(string(stat), ") D ") {
		t.Logf("frozen process state: %s", stat)
	}
	if err := m.Thaw("c1"); err != nil {
		t.Fatal(err)
	}
	if f, _ := m.Frozen("c1"); f {
		t.Fatal("still frozen after Thaw")
	}
	if err := m.Freeze("c1"); err != nil { // Delete must cope with a frozen group
		t.Fatal(err)
	}
	go cmd.Wait()
	if err := m.Delete("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup dir still there: %v", err)
	}
}

func TestInvalidID(t *testing.T) {
	m := &Manager{parent: "/nonexistent", ctrls: map[string]bool{}}
	for _, id := range []string{"", "..", "a/b", "."} {
		if _, err := m.Create(id, nil); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
	}
}

func TestDeviceProgramErrors(t *testing.T) {
	for _, r := range []specs.LinuxDeviceCgroup{{Type: "x"}, {Type: "c", Access: "rwz"}} {
		if _, err := DeviceProgram([]specs.LinuxDeviceCgroup{r}); err == nil {
			t.Errorf("rule %+v compiled", r)
		}
	}
}

// TestDeviceFilter runs a shell in a cgroup whose filter allows only
// /dev/null and checks which devices it can open.
func TestDeviceFilter(t *testing.T) {
	m := newTestManager(t)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rw"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "r"},
	}
	dir, err := m.Create("dev1", &specs.LinuxResources{Devices: rules})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Delete("dev1")
	tests := []struct {
		script string
		ok     bool
	}{
		{"echo x > /dev/null", true},
		{"head -c1 /dev/zero >/dev/null", true},
		{"echo x > /dev/zero", false},
		{"head -c1 /dev/urandom >/dev/null", false},
	}
	for _, tt := range tests {
		cmd := exec.Command("/bin/sh", "-c", "read x; "+tt.script)
		stdin, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		stdin.Write([]byte("go\n"))
		err := cmd.Wait()
		if (err == nil) != tt.ok {
			t.Errorf("%q in the filtered cgroup: %v, want success %v", tt.script, err, tt.ok)
		}
	}
}

// TestApplyAndOOMOnFiles runs the manager against a plain directory that
// stands in for a cgroup with every controller enabled.
func TestApplyAndOOMOnFiles(t *testing.T) {
	root := t.TempDir()
	m, err := NewAt(root, "parent")
	if err != nil {
		t.Fatal(err)
	}
	if m.Capabilities().Memory || m.Capabilities().Pids {
		t.Fatalf("capabilities without controllers: %+v", m.Capabilities())
	}
	m.ctrls = map[string]bool{"memory": true, "cpu": true, "pids": true}
	dir, err := m.Create("c", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20)), Swap: ptr(int64(2 << 20))},
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(2048)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(7))},
	}
	if err := m.Update("c", res); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"memory.max": "1048576", "memory.swap.max": "1048576", "cpu.weight": "79", "cpu.max": "50000 100000", "pids.max": "7"}
	for f, v := range want {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || string(b) != v {
			t.Errorf("%s = %q, %v; want %q", f, b, err, v)
		}
	}
	if m.OOMKilled("c") {
		t.Fatal("OOMKilled without memory.events")
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	if !m.OOMKilled("c") {
		t.Fatal("oom_kill 1 not reported")
	}
}
