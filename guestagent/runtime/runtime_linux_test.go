package runtime

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berthdesktop/berth/guestagent/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMain lets the test binary act as the container init and the reaper,
// as berth-agent does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == ReaperName {
		os.Exit(Reaper(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == InitCommand {
		if err := Init(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating namespaces and mounts needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("the test rootfs is made from /bin/busybox, which is missing")
	}
}

// busyboxLower builds a busybox root filesystem once per test binary.
var busyboxLower string

func lowerDir(t *testing.T) string {
	t.Helper()
	if busyboxLower != "" {
		return busyboxLower
	}
	dir, err := os.MkdirTemp("", "rt-lower-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	for _, d := range []string{"bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/alice", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", name))
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nwheel:x:10:root\nalice:x:1000:\nstaff:x:50:alice\nnogroup:x:65534:\n",
		"etc/noexec": "plain file\n",
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	busyboxLower = dir
	return dir
}

// requireStaticSelf skips tests that run this binary inside the busybox
// rootfs as the --init reaper when it needs a dynamic loader (go test -race
// links with cgo); berth-agent itself is static.
func requireStaticSelf(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Skip("the test binary is dynamically linked and cannot run inside the busybox rootfs as the reaper")
		}
	}
}

type testEnv struct {
	rt  *Runtime
	cg  *cgroups.Manager
	dir string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	var cgm CgroupManager
	cg, err := cgroups.New("berth-rt-test")
	if err == nil {
		cgm = cg
		t.Cleanup(func() { os.Remove(filepath.Join(cg.Mount(), "berth-rt-test")) })
	} else {
		t.Logf("running without cgroups: %v", err)
	}
	rt, err := New(Config{StateDir: filepath.Join(dir, "state"), Cgroups: cgm})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{rt: rt, cg: cg, dir: dir}
}

// rootfs returns an overlay of the busybox tree with a fresh upper dir.
func (e *testEnv) rootfs(t *testing.T, name string) []RootfsMount {
	lower := lowerDir(t)
	upper, work := filepath.Join(e.dir, name, "upper"), filepath.Join(e.dir, name, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []RootfsMount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}
}

var idSeq int

func testSpec(args ...string) *specs.Spec {
	s := DefaultSpec()
	s.Process.Args = args
	s.Hostname = "testhost"
	return s
}

// run creates and starts a container and returns its combined stdout and
// stderr and its exit status.
func (e *testEnv) run(t *testing.T, s *specs.Spec, opts CreateOptions) (string, string, ExitStatus) {
	t.Helper()
	idSeq++
	id := fmt.Sprintf("t%d-%d", os.Getpid(), idSeq)
	opts.Rootfs = e.rootfs(t, id)
	c, err := e.rt.Create(id, s, opts)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer c.Delete()
	pio := c.IO()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { io.Copy(&stdout, pio.Stdout); done <- struct{}{} }()
	go func() { io.Copy(&stderr, pio.Stderr); done <- struct{}{} }()
	if err := c.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := c.Wait()
	<-done
	<-done
	return stdout.String(), stderr.String(), st
}

func (e *testEnv) sh(t *testing.T, script string, mod func(*specs.Spec)) (string, ExitStatus) {
	t.Helper()
	s := testSpec("/bin/sh", "-c", script)
	if mod != nil {
		mod(s)
	}
	out, errOut, st := e.run(t, s, CreateOptions{})
	if errOut != "" {
		t.Logf("stderr: %s", errOut)
	}
	return out, st
}

func statusField(t *testing.T, status, field string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status:\n%s", field, status)
	return ""
}

func TestContainerBasics(t *testing.T) {
	e := newEnv(t)
	out, st := e.sh(t, `echo pid=$$; hostname; cat /proc/self/status; echo cwd=$(pwd)`, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = true
		s.Process.Cwd = "/tmp/work"
	})
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	tests := []struct{ what, want string }{
		{"pid=", "pid=1"},
		{"hostname", "testhost"},
		{"cwd", "cwd=/tmp/work"},
	}
	for _, tt := range tests {
		if !strings.Contains(out, tt.want+"\n") {
			t.Errorf("%s: want %q in\n%s", tt.what, tt.want, out)
		}
	}
	for field, want := range map[string]string{"CapEff": "00000000a80425fb", "CapBnd": "00000000a80425fb", "CapInh": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2", "Uid": "0\t0\t0\t0"} {
		if got := statusField(t, out, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
}

func TestSeccompAndMounts(t *testing.T) {
	e := newEnv(t)
	script := `
unshare -U true 2>/dev/null; echo unshare=$?
mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?
cat /proc/kcore 2>/dev/null | wc -c | tr -d ' ' | sed 's/^/kcore=/'
ls /sys/firmware | wc -l | tr -d ' ' | sed 's/^/firmware=/'
echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo procsys=$?
echo x > /proc/sysrq-trigger 2>/dev/null; echo sysrq=$?
touch /sys/x 2>/dev/null; echo sys=$?
grep -c ' /dev/shm ' /proc/mounts | sed 's/^/shm=/'
grep ' /dev/pts ' /proc/mounts | grep -q ptmxmode=666 && echo pts=ok
grep ' /dev/mqueue ' /proc/mounts | grep -q mqueue && echo mqueue=ok
readlink /dev/ptmx | sed 's/^/ptmx=/'
readlink /dev/fd | sed 's/^/fd=/'
ls -l /dev/null | cut -c1 | sed 's/^/null=/'
echo hi > /dev/null && echo devnull=ok
head -c 4 /dev/urandom | wc -c | tr -d ' ' | sed 's/^/urandom=/'
mknod /tmp/blk b 7 0 && echo mknod=ok
head -c 1 /tmp/blk >/dev/null 2>&1; echo blkread=$?
mknod /tmp/mynull c 1 3 && echo x > /tmp/mynull && echo mynull=ok
`
	out, st := e.sh(t, script, nil)
	if st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
	for _, want := range []string{"unshare=1", "mount=1", "kcore=0", "firmware=0", "procsys=1", "sysrq=1", "sys=1", "shm=1", "pts=ok", "mqueue=ok", "ptmx=pts/ptmx", "fd=/proc/self/fd", "null=c", "devnull=ok", "urandom=4", "mknod=ok", "blkread=1", "mynull=ok"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want %q in\n%s", want, out)
		}
	}
}

func TestUnconfined(t *testing.T) {
	e := newEnv(t)
	out, st := e.sh(t, `grep Seccomp: /proc/self/status; unshare -U true && echo unshare=ok`, func(s *specs.Spec) {
		s.Linux.Seccomp = nil
	})
	if st.Code != 0 || !strings.Contains(out, "unshare=ok") || !strings.Contains(out, "Seccomp:\t0") {
		t.Fatalf("exit %d: %s", st.Code, out)
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		user     specs.User
		want     string
		wantCaps string
	}{
		{"root default", specs.User{}, "uid=0(root) gid=0(root) groups=0(root),10(wheel)", "00000000a80425fb"},
		{"by name", specs.User{Username: "alice"}, "uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)", "0000000000000000"},
		{"by id", specs.User{Username: "1000"}, "uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)", "0000000000000000"},
		{"name and group", specs.User{Username: "alice:staff"}, "uid=1000(alice) gid=50(staff) groups=50(staff)", "0000000000000000"},
		{"numeric pair", specs.User{UID: 1234, GID: 4321}, "uid=1234 gid=4321 groups=4321", "0000000000000000"},
		{"extra gids", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}, "uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff),1000(alice)", "0000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, st := e.sh(t, `id; grep CapEff /proc/self/status; echo home=$HOME`, func(s *specs.Spec) { s.Process.User = tt.user })
			if st.Code != 0 {
				t.Fatalf("exit %d: %s", st.Code, out)
			}
			lines := strings.Split(out, "\n")
			if lines[0] != tt.want {
				t.Errorf("id = %q, want %q", lines[0], tt.want)
			}
			if got := statusField(t, out, "CapEff"); got != tt.wantCaps {
				t.Errorf("CapEff = %s, want %s", got, tt.wantCaps)
			}
		})
	}
	s := testSpec("id")
	s.Process.User = specs.User{Username: "nosuchuser"}
	_, err := e.rt.Create("baduser", s, CreateOptions{Rootfs: e.rootfs(t, "baduser")})
	if err == nil || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
		t.Fatalf("Create with unknown user: %v", err)
	}
}

func TestRlimits(t *testing.T) {
	e := newEnv(t)
	out, st := e.sh(t, `ulimit -n; ulimit -Hn`, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
	})
	if st.Code != 0 || out != "321\n654\n" {
		t.Fatalf("exit %d: %q", st.Code, out)
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		init bool
		want ExitStatus
	}{
		{"exit 3", []string{"sh", "-c", "exit 3"}, false, ExitStatus{Code: 3}},
		{"init exit 5", []string{"sh", "-c", "exit 5"}, true, ExitStatus{Code: 5}},
		{"init child killed", []string{"sh", "-c", "kill -TERM $$"}, true, ExitStatus{Code: 143}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.init {
				requireStaticSelf(t)
			}
			_, _, st := e.run(t, testSpec(tt.args...), CreateOptions{Init: tt.init})
			if st != tt.want {
				t.Fatalf("status = %+v, want %+v", st, tt.want)
			}
		})
	}
}

func TestSignalInit(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		init bool
		sig  syscall.Signal
		want ExitStatus
	}{
		// PID 1 without a handler only dies of SIGKILL from outside.
		{false, syscall.SIGKILL, ExitStatus{Code: 137, Signal: syscall.SIGKILL}},
		// The reaper forwards SIGTERM; the shell's default action kills it.
		{true, syscall.SIGTERM, ExitStatus{Code: 143}},
	}
	for i, tt := range tests {
		if tt.init {
			requireStaticSelf(t)
		}
		id := "sig" + strconv.Itoa(i)
		c, err := e.rt.Create(id, testSpec("sh", "-c", "echo ready; sleep 1000 & wait"), CreateOptions{Rootfs: e.rootfs(t, id), Init: tt.init})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 6)
		io.ReadFull(c.IO().Stdout, line) // the shell has set itself up
		if err := c.Signal(tt.sig); err != nil {
			t.Fatal(err)
		}
		if st := c.Wait(); st != tt.want {
			t.Errorf("init=%v %v: status %+v, want %+v", tt.init, tt.sig, st, tt.want)
		}
		if err := c.Delete(); err != nil {
			t.Error(err)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `exec: "nosuch": executable file not found in $PATH`},
		{[]string{"/etc"}, `exec: "/etc": permission denied`},
		{[]string{"/etc/noexec"}, `exec: "/etc/noexec": permission denied`},
		{[]string{"/nosuch"}, `exec: "/nosuch": stat /nosuch: no such file or directory`},
	}
	for i, tt := range tests {
		id := "cmderr" + strconv.Itoa(i)
		_, err := e.rt.Create(id, testSpec(tt.args...), CreateOptions{Rootfs: e.rootfs(t, id)})
		if err == nil || err.Error() != tt.want {
			t.Errorf("Create %v = %v, want %q", tt.args, err, tt.want)
		}
		if _, serr := os.Stat(filepath.Join(e.rt.cfg.StateDir, id)); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("state of failed %s left behind", id)
		}
	}
}

// BenchmarkRunTrue measures create, start and wait of a container running
// true, the runtime's share of `docker run --rm busybox true`.
func BenchmarkRunTrue(b *testing.B) {
	t := &testing.T{}
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	var cgm CgroupManager
	if cg, err := cgroups.New("berth-rt-bench"); err == nil {
		cgm = cg
		b.Cleanup(func() { os.Remove(filepath.Join(cg.Mount(), "berth-rt-bench")) })
	}
	rt, err := New(Config{StateDir: filepath.Join(dir, "state"), Cgroups: cgm})
	if err != nil {
		b.Fatal(err)
	}
	e := &testEnv{rt: rt, dir: dir}
	lowerDir(t)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := "bench" + strconv.Itoa(i)
		c, err := rt.Create(id, testSpec("true"), CreateOptions{Rootfs: e.rootfs(t, id)})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		if st := c.Wait(); st.Code != 0 {
			b.Fatalf("exit %+v", st)
		}
		if err := c.Delete(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCapAddAdjustsDefaultProfile gives a container CAP_SYS_ADMIN while its
// spec keeps the default profile: mount must work, as with dockerd.
func TestCapAddAdjustsDefaultProfile(t *testing.T) {
	e := newEnv(t)
	out, st := e.sh(t, `mount -t tmpfs none /tmp && echo mounted`, func(s *specs.Spec) {
		caps := append([]string{"CAP_SYS_ADMIN"}, DefaultCapabilities...)
		c := s.Process.Capabilities
		c.Bounding, c.Effective, c.Permitted = caps, caps, caps
	})
	if st.Code != 0 || out != "mounted\n" {
		t.Fatalf("exit %+v: %q", st, out)
	}
}

// TestAllCapabilities asks for every capability the runtime knows; the
// container gets those this process holds.
func TestAllCapabilities(t *testing.T) {
	e := newEnv(t)
	self, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	want := statusField(t, string(self), "CapPrm")
	out, st := e.sh(t, `grep CapEff /proc/self/status`, func(s *specs.Spec) { SetPrivileged(s) })
	if st.Code != 0 {
		t.Fatalf("exit %+v: %s", st, out)
	}
	if got := statusField(t, out, "CapEff"); got != want {
		t.Fatalf("privileged CapEff = %s, want this process's %s", got, want)
	}
}

// TestJoinNetworkByPath runs a container in the network namespace of
// another process, as the engine does for --network container:NAME.
func TestJoinNetworkByPath(t *testing.T) {
	e := newEnv(t)
	// The holder says ready once it runs in its new namespace.
	holder := exec.Command("unshare", "--net", "sh", "-c", "echo ready; exec sleep 1000")
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Skipf("cannot start a network namespace holder: %v", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("holder: %q %v", line, err)
	}
	path := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"
	want, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	out, st := e.sh(t, `readlink /proc/self/ns/net`, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = path
			}
		}
	})
	if st.Code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("exit %+v: container net namespace %q, want %q", st, out, want)
	}
}
