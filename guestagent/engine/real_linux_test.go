//go:build linux

package engine

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/cgroups"
	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/runtime"
	"github.com/berthdesktop/berth/internal/testimage"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary act as the runtime's re-executed container
// init and as the --init reaper, as berth-agent does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == runtime.ReaperName {
		os.Exit(runtime.Reaper(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == runtime.InitCommand {
		if err := runtime.Init(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// realEngine is an engine over the real image store and runtime, with a
// busybox image imported as "busybox".
func realEngine(t *testing.T, root string) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running containers needs root")
	}
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skip("the test image is made from /bin/busybox, which is missing")
	}
	if root == "" {
		root = t.TempDir()
	}
	store, err := image.Open(filepath.Join(root, "image"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Resolve("busybox"); err != nil {
		var layer bytes.Buffer
		if err := testimage.WriteRootfs(&layer, testimage.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := store.ImageImport(context.Background(), &layer, api.ImportOptions{Repo: "busybox", Tag: "latest", Changes: []string{`CMD ["sh"]`}}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	var cg runtime.CgroupManager
	var lim Limits
	if mgr, err := cgroups.New("berth-engine-test"); err == nil {
		cg = mgr
		c := mgr.Capabilities()
		lim = Limits{Memory: c.Memory, Swap: c.Swap, CPUQuota: c.CPU, CPUShares: c.CPUShares, CPUSet: c.CPUSet, Pids: c.Pids}
	}
	rt, err := runtime.New(runtime.Config{StateDir: filepath.Join(root, "exec"), Cgroups: cg})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Root: root, Images: store, Runtime: WrapRuntime(rt), DefaultSpec: runtime.DefaultSpec, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Shutdown(context.Background())
		for _, c := range e.containers() {
			e.ContainerRemove(context.Background(), c.m.ID, api.RemoveOptions{Force: true})
		}
	})
	return e
}

// runReal creates, attaches, starts and waits like docker run, returning the
// output and the exit code.
func runReal(t *testing.T, e *Engine, stdin string, cfg container.Config, hc *container.HostConfig) (string, string, int64) {
	t.Helper()
	cfg.Image = "busybox"
	cfg.AttachStdout, cfg.AttachStderr = true, true
	if stdin != "" {
		cfg.OpenStdin, cfg.StdinOnce, cfg.AttachStdin = true, true, true
	}
	resp, err := e.ContainerCreate(bg, "", &container.CreateRequest{Config: &cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create %v: %v", cfg.Cmd, err)
	}
	s := &streams{stdin: io.NopCloser(strings.NewReader(stdin)), taken: make(chan struct{})}
	attached := make(chan error, 1)
	go func() {
		attached <- e.ContainerAttach(bg, resp.ID, api.AttachOptions{GetStreams: s.get, UseStdin: stdin != "", UseStdout: true, UseStderr: true, Stream: true})
	}()
	// As docker run: the attach is established before the start.
	select {
	case <-s.taken:
	case err := <-attached:
		t.Fatalf("attach ended early: %v", err)
	}
	waitCh, err := e.ContainerWait(bg, resp.ID, container.WaitConditionNextExit)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(bg, resp.ID); err != nil {
		t.Fatalf("start %v: %v", cfg.Cmd, err)
	}
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	code := (<-waitCh).StatusCode
	if err := e.ContainerRemove(bg, resp.ID, api.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String(), s.errb.String(), code
}

func TestRealRun(t *testing.T) {
	e := realEngine(t, "")
	tests := []struct {
		name    string
		stdin   string
		cfg     container.Config
		hc      *container.HostConfig
		wantOut string // substring
		wantErr string // substring of stderr
		code    int64
	}{
		{name: "echo", cfg: container.Config{Cmd: []string{"echo", "hello"}}, wantOut: "hello\n"},
		{name: "exit code", cfg: container.Config{Cmd: []string{"sh", "-c", "exit 7"}}, code: 7},
		{name: "stderr", cfg: container.Config{Cmd: []string{"sh", "-c", "echo oops >&2"}}, wantErr: "oops\n"},
		{name: "stdin once", stdin: "a\nb\n", cfg: container.Config{Cmd: []string{"cat"}}, wantOut: "a\nb\n"},
		{name: "hostname", cfg: container.Config{Cmd: []string{"sh", "-c", "hostname; cat /etc/hostname"}, Hostname: "box"}, wantOut: "box\nbox\n"},
		{name: "env", cfg: container.Config{Cmd: []string{"sh", "-c", "echo $A-$HOSTNAME"}, Env: []string{"A=1"}, Hostname: "h"}, wantOut: "1-h\n"},
		{name: "user", cfg: container.Config{Cmd: []string{"id", "-u"}, User: testimage.UserName}, wantOut: "1000\n"},
		{name: "workdir", cfg: container.Config{Cmd: []string{"pwd"}, WorkingDir: "/made/here"}, wantOut: "/made/here\n"},
		{name: "loopback up", cfg: container.Config{Cmd: []string{"sh", "-c", "ip -o link show lo | grep -c UP"}}, wantOut: "1\n"},
		{name: "read-only", cfg: container.Config{Cmd: []string{"sh", "-c", "touch /x"}}, hc: &container.HostConfig{ReadonlyRootfs: true}, code: 1},
		{name: "tmpfs", cfg: container.Config{Cmd: []string{"sh", "-c", "touch /scratch/x && echo ok"}}, hc: &container.HostConfig{ReadonlyRootfs: true, Tmpfs: map[string]string{"/scratch": "size=1m"}}, wantOut: "ok\n"},
		{name: "ulimit", cfg: container.Config{Cmd: []string{"sh", "-c", "ulimit -n"}}, hc: &container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 123, Hard: 456}}}}, wantOut: "123\n"},
		{name: "caps", cfg: container.Config{Cmd: []string{"grep", "CapEff", "/proc/self/status"}}, wantOut: "00000000a80425fb"},
		{name: "cap drop", cfg: container.Config{Cmd: []string{"grep", "CapEff", "/proc/self/status"}}, hc: &container.HostConfig{CapDrop: []string{"ALL"}}, wantOut: "0000000000000000"},
		{name: "cap-add widens seccomp", cfg: container.Config{Cmd: []string{"sh", "-c", "mkdir -p /m && mount -t tmpfs none /m && echo mounted"}}, hc: &container.HostConfig{CapAdd: []string{"SYS_ADMIN"}}, wantOut: "mounted\n"},
		{name: "no-new-privileges", cfg: container.Config{Cmd: []string{"grep", "NoNewPrivs", "/proc/self/status"}}, hc: &container.HostConfig{SecurityOpt: []string{"no-new-privileges"}}, wantOut: "1"},
		{name: "init", cfg: container.Config{Cmd: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}}, hc: &container.HostConfig{Init: ptr(true)}, wantOut: "/sbin/docker-init -- sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.hc != nil && tt.hc.Init != nil && !staticSelf() {
				t.Skip("--init bind-mounts this binary into the container, and this test binary is dynamically linked")
			}
			out, errOut, code := runReal(t, e, tt.stdin, tt.cfg, tt.hc)
			if code != tt.code || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d out %q err %q; want %d %q %q", code, out, errOut, tt.code, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// staticSelf reports whether this binary needs no dynamic loader.
func staticSelf() bool {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func TestRealStartErrorsAndExec(t *testing.T) {
	e := realEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"nosuchcmd"}}, nil)
	err := e.ContainerStart(bg, id)
	if err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("start of missing command: %v", err)
	}
	if ins, _ := e.ContainerInspect(bg, id, false); ins.State.ExitCode != 127 {
		t.Errorf("exit code %d, want 127", ins.State.ExitCode)
	}

	id = create(t, e, "", container.Config{Cmd: []string{"sleep", "1000"}}, nil)
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	execOut := func(req container.ExecCreateRequest) (string, int) {
		req.AttachStdout, req.AttachStderr = true, true
		xid, err := e.ExecCreate(bg, id, &req)
		if err != nil {
			t.Fatal(err)
		}
		s := &streams{stdin: io.NopCloser(strings.NewReader(""))}
		_ = e.ExecStart(bg, xid, api.ExecStartOptions{GetStreams: s.get})
		ins, err := e.ExecInspect(bg, xid)
		if err != nil || ins.ExitCode == nil {
			t.Fatalf("exec inspect: %+v %v", ins, err)
		}
		return s.out.String() + s.errb.String(), *ins.ExitCode
	}
	tests := []struct {
		req  container.ExecCreateRequest
		out  string
		code int
	}{
		{container.ExecCreateRequest{Cmd: []string{"hostname"}}, id[:12] + "\n", 0},
		{container.ExecCreateRequest{Cmd: []string{"id", "-un"}, User: "user"}, "user\n", 0},
		{container.ExecCreateRequest{Cmd: []string{"sh", "-c", "echo $X; pwd"}, Env: []string{"X=y"}, WorkingDir: "/tmp"}, "y\n/tmp\n", 0},
		{container.ExecCreateRequest{Cmd: []string{"sh", "-c", "exit 4"}}, "", 4},
		{container.ExecCreateRequest{Cmd: []string{"nosuchcmd"}}, "", 127},
		{container.ExecCreateRequest{Cmd: []string{"/etc"}}, "", 126},
	}
	for _, tt := range tests {
		out, code := execOut(tt.req)
		if out != tt.out || code != tt.code {
			t.Errorf("exec %v: %q %d, want %q %d", tt.req.Cmd, out, code, tt.out, tt.code)
		}
	}
	top, err := e.ContainerTop(bg, id, "")
	if err != nil || len(top.Processes) != 1 || !strings.Contains(top.Processes[0][7], "sleep 1000") {
		t.Errorf("top: %+v %v", top, err)
	}
	if err := e.ContainerPause(bg, id); err != nil {
		t.Logf("pause not available here: %v", err)
	} else if err := e.ContainerUnpause(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStop(bg, id, "", ptr(1)); err != nil {
		t.Fatal(err)
	}
	ins, _ := e.ContainerInspect(bg, id, false)
	if ins.State.ExitCode != 137 && ins.State.ExitCode != 143 {
		t.Errorf("exit after stop: %d", ins.State.ExitCode)
	}
}

func TestRealRestartEngine(t *testing.T) {
	root := t.TempDir()
	e := realEngine(t, root)
	id := create(t, e, "keep", container.Config{Cmd: []string{"sh", "-c", "echo ran"}}, nil)
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, "")
	e2 := realEngine(t, root)
	e2.Restore(context.Background())
	if err := e2.ContainerStart(bg, "keep"); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e2, id, "")
	msgs, _, err := e2.ContainerLogs(bg, "keep", api.LogsOptions{ShowStdout: true, Tail: "all"})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for m := range msgs {
		if string(m.Line) == "ran\n" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("log has %d runs, want 2", n)
	}
}

// hostDevice is a device node of the host: its path, type ("b" or "c"),
// major and minor.
type hostDevice struct {
	path, typ    string
	major, minor uint32
}

// readableHostDevices lists host devices this process can read a byte
// from: the block devices of /sys/block, and character devices outside
// Docker's allowlist. A container must not read any of them; one the host
// itself cannot read proves nothing and is left out.
func readableHostDevices(t *testing.T) []hostDevice {
	t.Helper()
	var paths []string
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range devs {
		paths = append(paths, "/dev/"+filepath.Base(filepath.Dir(d)))
	}
	paths = append(paths, "/dev/vcs", "/dev/cpu_dma_latency", "/dev/mem")
	var out []hostDevice
	for _, p := range paths {
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			continue
		}
		typ := "c"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			typ = "b"
		case unix.S_IFCHR:
		default:
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		n, _ := f.Read(make([]byte, 1))
		f.Close()
		if n != 1 {
			continue
		}
		out = append(out, hostDevice{path: p, typ: typ, major: unix.Major(uint64(st.Rdev)), minor: unix.Minor(uint64(st.Rdev))})
	}
	return out
}

func TestRealDeviceRules(t *testing.T) {
	e := realEngine(t, "")
	readable := readableHostDevices(t)
	if len(readable) == 0 {
		t.Skip("this host lets this process read none of its devices, so a denial in a container proves nothing")
	}
	type tcase struct {
		name    string
		cmd     string
		hc      *container.HostConfig
		wantOut string
		denied  bool // the command must fail and not print READ
	}
	var tests []tcase
	for _, d := range readable {
		read := fmt.Sprintf("mknod /tmp/dev %s %d %d && head -c1 /tmp/dev >/dev/null && echo READ", d.typ, d.major, d.minor)
		tests = append(tests,
			tcase{name: "default container cannot read " + d.path, cmd: read, denied: true},
			tcase{name: "cap-add does not lift the rules for " + d.path, cmd: read, hc: &container.HostConfig{CapAdd: []string{"SYS_ADMIN", "SYS_RAWIO"}}, denied: true},
			tcase{name: "privileged reads " + d.path, cmd: "head -c1 " + d.path + " >/dev/null && echo READ", hc: &container.HostConfig{Privileged: true}, wantOut: "READ\n"},
		)
	}
	tests = append(tests, tcase{name: "default devices work", cmd: "echo x >/dev/null && head -c1 /dev/zero | wc -c", wantOut: "1\n"})
	// The host's block devices exist in a privileged container's /dev.
	devs, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range devs {
		node := "/dev/" + filepath.Base(filepath.Dir(d))
		if _, err := os.Stat(node); err == nil {
			tests = append(tests, tcase{name: "privileged has " + node, cmd: "test -b " + node + " && echo YES", hc: &container.HostConfig{Privileged: true}, wantOut: "YES\n"})
			break
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runReal(t, e, "", container.Config{Cmd: []string{"sh", "-c", tt.cmd}}, tt.hc)
			if tt.denied {
				if code == 0 || strings.Contains(out, "READ") {
					t.Errorf("exit %d out %q err %q: a host device was readable", code, out, errOut)
				}
				return
			}
			if code != 0 || out != tt.wantOut {
				t.Errorf("exit %d out %q err %q; want 0 %q", code, out, errOut, tt.wantOut)
			}
		})
	}
}
