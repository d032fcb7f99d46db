//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

var nameSeq atomic.Int64

// uniqueName returns a container name no other test uses.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

// Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL
// SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD
// AUDIT_WRITE SETFCAP.
const defaultCapEff = "00000000a80425fb"

// allCaps is what --privileged grants: every capability in the bounding
// set the engine inherits from this test (a sandboxed host may lack some
// that the kernel knows).
func allCaps(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("read own status: %v", err)
	}
	bnd, ok := parseStatus(string(b))["CapBnd"]
	if !ok {
		t.Fatalf("no CapBnd in /proc/self/status")
	}
	return bnd
}

// TestRunOutput runs one container per case with `docker run --rm` and
// checks its exit status and output.
func TestRunOutput(t *testing.T) {
	e := needEngine(t)
	tests := []struct {
		name   string
		args   []string // between "run --rm" and the image
		cmd    []string
		stdin  string
		code   int
		stdout string // exact, when want is nil
	}{
		{name: "echo", cmd: []string{"echo", "hello"}, stdout: "hello\n"},
		{name: "own exit code", cmd: []string{"sh", "-c", "exit 7"}, code: 7},
		{name: "not found", cmd: []string{"no-such-command"}, code: 127},
		{name: "not executable", cmd: []string{"/etc/passwd"}, code: 126},
		{name: "env", args: []string{"-e", "FOO=bar baz"}, cmd: []string{"sh", "-c", `echo "$FOO"`}, stdout: "bar baz\n"},
		{name: "image env", cmd: []string{"sh", "-c", `echo "$PATH"`}, stdout: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{name: "workdir created", args: []string{"-w", "/tmp/new/dir"}, cmd: []string{"pwd"}, stdout: "/tmp/new/dir\n"},
		{name: "user by name", args: []string{"-u", "user"}, cmd: []string{"sh", "-c", "id -u; id -g; id -G"}, stdout: "1000\n1000\n"},
		{name: "user by id", args: []string{"-u", "1234:5678"}, cmd: []string{"sh", "-c", "id -u; id -g"}, stdout: "1234\n5678\n"},
		{name: "user name and group", args: []string{"-u", "user:staff"}, cmd: []string{"sh", "-c", "id -u; id -g"}, stdout: "1000\n50\n"},
		{name: "hostname", args: []string{"--hostname", "box1"}, cmd: []string{"hostname"}, stdout: "box1\n"},
		{name: "pid 1 is the command", cmd: []string{"sh", "-c", "echo $$"}, stdout: "1\n"},
		{name: "pid 1 cmdline", cmd: []string{"cat", "/proc/1/cmdline"}, stdout: "cat\x00/proc/1/cmdline\x00"},
		{name: "stdin piped", args: []string{"-i"}, cmd: []string{"cat"}, stdin: "line one\nline two\n", stdout: "line one\nline two\n"},
		{name: "stdin closed without -i", cmd: []string{"cat"}, stdin: "ignored\n", stdout: ""},
		{name: "ulimit", args: []string{"--ulimit", "nofile=1024:2048"}, cmd: []string{"sh", "-c", "ulimit -n; ulimit -Hn"}, stdout: "1024\n2048\n"},
		{name: "read-only rootfs", args: []string{"--read-only"}, cmd: []string{"touch", "/x"}, code: 1},
		{name: "writable rootfs", cmd: []string{"sh", "-c", "touch /x && echo ok"}, stdout: "ok\n"},
		{name: "limits accepted", args: []string{"-m", "64m", "--cpus", "0.5"}, cmd: []string{"echo", "ok"}, stdout: "ok\n"},
		{name: "stderr is not stdout", cmd: []string{"sh", "-c", "echo out; echo err >&2"}, stdout: "out\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tt.args...), testImage)
			args = append(args, tt.cmd...)
			var stdin *strings.Reader
			if tt.stdin != "" {
				stdin = strings.NewReader(tt.stdin)
			}
			var r result
			if stdin != nil {
				r = e.docker(stdin, args...)
			} else {
				r = e.docker(nil, args...)
			}
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%v", r.code, tt.code, r)
			}
			if tt.code == 0 && tt.name != "user by name" && r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q\n%v", r.stdout, tt.stdout, r)
			}
			if tt.name == "user by name" {
				lines := nonEmptyLines(r.stdout)
				if len(lines) != 3 || lines[0] != "1000" || lines[1] != "1000" || !hasField(lines[2], "50") || !hasField(lines[2], "1000") {
					t.Errorf("id -u, -g, -G = %q; want 1000, 1000 and groups 1000 and 50", r.stdout)
				}
			}
		})
	}
}

func hasField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// TestRunEngineErrors checks that errors of the engine exit 125.
func TestRunEngineErrors(t *testing.T) {
	e := needEngine(t)
	name := uniqueName("dup")
	e.create(t, "--name", name, testImage, "true")
	tests := []struct {
		name string
		args []string
	}{
		{"name in use", []string{"run", "--rm", "--name", name, testImage, "true"}},
		{"no such image", []string{"run", "--rm", "--pull", "never", "berth-test/no-such-image:v0", "true"}},
		{"bad capability", []string{"run", "--rm", "--cap-add", "NOT_A_CAP", testImage, "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, r := e.code(tt.args...); code != 125 {
				t.Errorf("exit %d, want 125\n%v", code, r)
			}
		})
	}
}

// TestRunLargeStdin pipes a megabyte through a container and compares
// digests.
func TestRunLargeStdin(t *testing.T) {
	e := needEngine(t)
	data := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(data)
	sum := sha256.Sum256(data)
	r := e.docker(bytes.NewReader(data), "run", "--rm", "-i", testImage, "sha256sum")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if f := strings.Fields(r.stdout); len(f) == 0 || f[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256sum in the container = %q, want %s", r.stdout, hex.EncodeToString(sum[:]))
	}
}

// TestRunSecurity checks the process's security state from inside.
func TestRunSecurity(t *testing.T) {
	e := needEngine(t)
	tests := []struct {
		name       string
		args       []string
		capEff     string
		noNewPrivs string
		seccomp    string
	}{
		{name: "default", capEff: defaultCapEff, noNewPrivs: "0", seccomp: "2"},
		{name: "no-new-privileges", args: []string{"--security-opt", "no-new-privileges"}, capEff: defaultCapEff, noNewPrivs: "1", seccomp: "2"},
		{name: "cap-add NET_ADMIN", args: []string{"--cap-add", "NET_ADMIN"}, capEff: "00000000a80435fb", noNewPrivs: "0", seccomp: "2"},
		{name: "cap-drop CHOWN", args: []string{"--cap-drop", "CHOWN"}, capEff: "00000000a80425fa", noNewPrivs: "0", seccomp: "2"},
		{name: "cap-drop ALL", args: []string{"--cap-drop", "ALL"}, capEff: "0000000000000000", noNewPrivs: "0", seccomp: "2"},
		{name: "cap-drop ALL cap-add KILL", args: []string{"--cap-drop", "ALL", "--cap-add", "KILL"}, capEff: "0000000000000020", noNewPrivs: "0", seccomp: "2"},
		{name: "privileged", args: []string{"--privileged"}, capEff: allCaps(t), noNewPrivs: "0", seccomp: "0"},
		{name: "non-root user", args: []string{"-u", "user"}, capEff: "0000000000000000", noNewPrivs: "0", seccomp: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tt.args...), testImage, "cat", "/proc/self/status")
			st := parseStatus(e.ok(t, args...))
			if st["CapEff"] != tt.capEff {
				t.Errorf("CapEff %q, want %q", st["CapEff"], tt.capEff)
			}
			if st["NoNewPrivs"] != tt.noNewPrivs {
				t.Errorf("NoNewPrivs %q, want %q", st["NoNewPrivs"], tt.noNewPrivs)
			}
			if st["Seccomp"] != tt.seccomp {
				t.Errorf("Seccomp %q, want %q", st["Seccomp"], tt.seccomp)
			}
		})
	}
	t.Run("seccomp blocks a syscall the profile denies", func(t *testing.T) {
		// unshare(CLONE_NEWUSER) is denied by Docker's default profile
		// without CAP_SYS_ADMIN; busybox's unshare applet makes the call.
		if code, r := e.code("run", "--rm", testImage, "unshare", "-U", "true"); code == 0 {
			t.Errorf("unshare -U succeeded under the default profile\n%v", r)
		}
	})
}

// TestRunMounts checks the container's filesystem layout: /proc, /dev and
// its submounts, read-only /sys, and Docker's masked and read-only paths.
func TestRunMounts(t *testing.T) {
	e := needEngine(t)
	out := e.ok(t, "run", "--rm", testImage, "cat", "/proc/self/mountinfo")
	mounts, err := parseMountinfo(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	byPoint := map[string]mountEntry{}
	for _, m := range mounts {
		byPoint[m.Point] = m // the last mount on a point is the visible one
	}
	tests := []struct {
		point  string
		fstype string
		ro     bool
	}{
		{"/", "overlay", false},
		{"/proc", "proc", false},
		{"/dev", "tmpfs", false},
		{"/dev/pts", "devpts", false},
		{"/dev/shm", "tmpfs", false},
		{"/dev/mqueue", "mqueue", false},
		{"/sys", "sysfs", true},
	}
	for _, tt := range tests {
		m, ok := byPoint[tt.point]
		if !ok {
			t.Errorf("%s is not mounted", tt.point)
			continue
		}
		if m.FSType != tt.fstype {
			t.Errorf("%s: type %s, want %s", tt.point, m.FSType, tt.fstype)
		}
		if m.has("ro") != tt.ro {
			t.Errorf("%s: options %v, want ro=%v", tt.point, m.Options, tt.ro)
		}
	}
	// Docker's read-only paths that this kernel has.
	for _, p := range []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		m, ok := byPoint[p]
		if !ok || !m.has("ro") {
			t.Errorf("%s is not mounted read-only: %+v", p, m)
		}
	}
	// Docker's masked paths that this kernel has read empty.
	for _, p := range []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			if got := e.ok(t, "run", "--rm", testImage, "ls", "-A", p); got != "" {
				t.Errorf("masked directory %s lists %q", p, got)
			}
		} else if got := e.ok(t, "run", "--rm", testImage, "sh", "-c", "wc -c < "+p); strings.TrimSpace(got) != "0" {
			t.Errorf("masked file %s reads %s bytes", p, got)
		}
	}
	t.Run("devices", func(t *testing.T) {
		out := e.ok(t, "run", "--rm", testImage, "sh", "-c",
			"for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok")
		want := "null\nzero\nfull\nrandom\nurandom\ntty\n4\nnull-ok"
		if strings.Join(strings.Fields(out), "\n") != want {
			t.Errorf("devices: %q, want %q", out, want)
		}
	})
	t.Run("proc shows only the container", func(t *testing.T) {
		out := e.ok(t, "run", "--rm", testImage, "sh", "-c", "ls -d /proc/[0-9]* | wc -l")
		// sh, ls and wc at most.
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n > 3 {
			t.Errorf("container sees %q processes", out)
		}
	})
}

// TestRunInit checks --init: a reaper is pid 1 and the command its child.
func TestRunInit(t *testing.T) {
	e := needEngine(t)
	out := e.ok(t, "run", "--rm", "--init", testImage, "sh", "-c", "echo $$; cat /proc/1/cmdline")
	lines := strings.SplitN(out, "\n", 2)
	if len(lines) != 2 {
		t.Fatalf("output %q", out)
	}
	if lines[0] == "1" {
		t.Errorf("with --init the command is pid 1")
	}
	argv0 := strings.SplitN(lines[1], "\x00", 2)[0]
	if !strings.HasSuffix(argv0, "docker-init") {
		t.Errorf("pid 1 is %q, want docker-init", strings.ReplaceAll(lines[1], "\x00", " "))
	}
	if code, r := e.code("run", "--rm", "--init", testImage, "sh", "-c", "exit 9"); code != 9 {
		t.Errorf("--init exit code %d, want 9\n%v", code, r)
	}
	// The reaper forwards SIGTERM to the command.
	id := e.runDetached(t, "--init", testImage, "sh", "-c", `trap "exit 33" TERM; while :; do sleep 0.1; done`)
	// The trap must be set before the signal is sent.
	eventually(t, "container running its loop", func() (bool, string) {
		out := e.docker(nil, "top", id).stdout
		return strings.Contains(out, "sleep"), out
	})
	e.ok(t, "stop", "-t", "30", id)
	if doc := e.inspect(t, id); doc.State.ExitCode != 33 {
		t.Errorf("exit code after stop under --init %d, want 33", doc.State.ExitCode)
	}
}

// TestRunRm checks that --rm removes the container after it exits.
func TestRunRm(t *testing.T) {
	e := needEngine(t)
	name := uniqueName("rm")
	e.ok(t, "run", "--rm", "--name", name, testImage, "true")
	eventually(t, "container "+name+" removed", func() (bool, string) {
		out := e.ok(t, "ps", "-a", "-q", "--filter", "name=^"+name+"$")
		return out == "", out
	})
	// --rm with -d: removed once it exits.
	name = uniqueName("rmd")
	e.ok(t, "run", "-d", "--rm", "--name", name, testImage, "true")
	eventually(t, "container "+name+" removed", func() (bool, string) {
		out := e.ok(t, "ps", "-a", "-q", "--filter", "name=^"+name+"$")
		return out == "", out
	})
}

// TestRunDetachedInspect checks what inspect reports of run options.
func TestRunDetachedInspect(t *testing.T) {
	e := needEngine(t)
	name := uniqueName("insp")
	id := e.runDetached(t, "--name", name, "-e", "A=1", "-w", "/tmp", "-u", "user", "--hostname", "hh",
		"-m", "64m", "--cpus", "0.5", "--restart", "on-failure:3", "--label", "k=v", testImage, "sleep", "1000")
	doc := e.inspect(t, id)
	if len(doc.ID) != 64 || !strings.HasPrefix(doc.ID, id[:12]) {
		t.Errorf("Id %q, run printed %q", doc.ID, id)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"Name", doc.Name, "/" + name},
		{"Image", doc.Image, img.ID},
		{"Config.Image", doc.Config.Image, testImage},
		{"Config.Hostname", doc.Config.Hostname, "hh"},
		{"Config.User", doc.Config.User, "user"},
		{"Config.WorkingDir", doc.Config.WorkingDir, "/tmp"},
		{"Config.Cmd", strings.Join(doc.Config.Cmd, " "), "sleep 1000"},
		{"Config.Labels[k]", doc.Config.Labels["k"], "v"},
		{"Path", doc.Path, "sleep"},
		{"Args", strings.Join(doc.Args, " "), "1000"},
		{"State.Status", string(doc.State.Status), "running"},
		{"State.Running", doc.State.Running, true},
		{"HostConfig.Memory", doc.HostConfig.Memory, int64(64 << 20)},
		{"HostConfig.NanoCPUs", doc.HostConfig.NanoCPUs, int64(500000000)},
		{"HostConfig.RestartPolicy.Name", string(doc.HostConfig.RestartPolicy.Name), "on-failure"},
		{"HostConfig.RestartPolicy.MaximumRetryCount", doc.HostConfig.RestartPolicy.MaximumRetryCount, 3},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if !containsString(doc.Config.Env, "A=1") {
		t.Errorf("Config.Env %v lacks A=1", doc.Config.Env)
	}
	if doc.State.Pid <= 0 {
		t.Errorf("State.Pid %d while running", doc.State.Pid)
	}
	// The pid is a real process on this host running the command.
	if doc.State.Pid > 0 {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", doc.State.Pid))
		if err != nil || string(cmdline) != "sleep\x001000\x00" {
			t.Errorf("/proc/%d/cmdline = %q (%v), want sleep 1000", doc.State.Pid, cmdline, err)
		}
	}
	// The default hostname is the short ID.
	id2 := e.runDetached(t, testImage, "hostname")
	e.ok(t, "wait", id2)
	if got := e.ok(t, "logs", id2); got != id2[:12] {
		t.Errorf("default hostname %q, want %q", got, id2[:12])
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRestartPolicy checks on-failure:N and always.
func TestRestartPolicy(t *testing.T) {
	e := needEngine(t)
	t.Run("on-failure:2", func(t *testing.T) {
		id := e.runDetached(t, "--restart", "on-failure:2", testImage, "sh", "-c", "echo run; exit 3")
		var doc = e.inspect(t, id)
		eventually(t, "two restarts, then exited", func() (bool, string) {
			doc = e.inspect(t, id)
			return doc.RestartCount == 2 && doc.State.Status == "exited", fmt.Sprintf("RestartCount %d, Status %s", doc.RestartCount, doc.State.Status)
		})
		if doc.State.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", doc.State.ExitCode)
		}
		if got := strings.Count(e.ok(t, "logs", id), "run"); got != 3 {
			t.Errorf("the command ran %d times, want 3", got)
		}
	})
	t.Run("on-failure on success", func(t *testing.T) {
		id := e.runDetached(t, "--restart", "on-failure", testImage, "true")
		e.ok(t, "wait", id)
		doc := e.inspect(t, id)
		if doc.RestartCount != 0 {
			t.Errorf("restarted %d times after exit 0", doc.RestartCount)
		}
	})
	t.Run("always, then stop", func(t *testing.T) {
		id := e.runDetached(t, "--restart", "always", testImage, "sh", "-c", "sleep 0.2; exit 1")
		eventually(t, "restarted at least once", func() (bool, string) {
			doc := e.inspect(t, id)
			return doc.RestartCount >= 1, fmt.Sprintf("RestartCount %d", doc.RestartCount)
		})
		e.ok(t, "stop", "-t", "1", id)
		doc := e.inspect(t, id)
		if doc.State.Running || doc.State.Restarting {
			t.Errorf("after docker stop: Running %v Restarting %v", doc.State.Running, doc.State.Restarting)
		}
	})
}

// hostMemoryControllable reports whether the host's cgroup2 hierarchy (found
// from /proc/self/mountinfo) offers the memory controller at its root.
func hostMemoryControllable(t *testing.T) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("read mountinfo: %v", err)
	}
	mounts, err := parseMountinfo(string(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		ctl, err := os.ReadFile(m.Point + "/cgroup.controllers")
		if err == nil && hasField(string(ctl), "memory") {
			return true
		}
	}
	return false
}

// TestMemoryLimit checks -m: enforced through the container's cgroup where
// the host's cgroup v2 hierarchy offers the memory controller, else
// reported as a warning by docker info, as dockerd does. (A dockerd peer on
// a cgroup v1 hybrid host enforces through v1 and does not warn.)
func TestMemoryLimit(t *testing.T) {
	e := needEngine(t)
	if hostMemoryControllable(t) {
		out := e.ok(t, "run", "--rm", "-m", "64m", testImage, "cat", "/sys/fs/cgroup/memory.max")
		if strings.TrimSpace(out) != "67108864" {
			t.Errorf("memory.max in a -m 64m container: %q, want 67108864", out)
		}
		return
	}
	var warnings []string
	out := e.ok(t, "info", "--format", "{{json .Warnings}}")
	if err := json.Unmarshal([]byte(out), &warnings); err != nil {
		t.Fatalf("decode info warnings %q: %v", out, err)
	}
	found := false
	for _, w := range warnings {
		if strings.Contains(strings.ToLower(w), "memory") {
			found = true
		}
	}
	if !found {
		t.Errorf("this host offers no memory controller, but docker info warns of nothing about memory: %q", warnings)
	}
}
