package runtime

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// started creates and starts a long-running container.
func (e *testEnv) started(t *testing.T, id string, s *specs.Spec, opts CreateOptions) *Container {
	t.Helper()
	opts.Rootfs = e.rootfs(t, id)
	c, err := e.rt.Create(id, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Signal(9)
		c.Wait()
		c.Delete()
	})
	return c
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	if r == nil {
		return ""
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestExecJoinsEverything(t *testing.T) {
	e := newEnv(t)
	s := testSpec("sleep", "1000")
	s.Process.NoNewPrivileges = true
	c := e.started(t, "exec1", s, CreateOptions{})
	nsNames := []string{"mnt", "pid", "net", "uts", "ipc", "cgroup"}
	script := `for n in ` + strings.Join(nsNames, " ") + `; do echo "$n $(readlink /proc/self/ns/$n)"; done
echo "init $(cat /proc/1/cmdline | tr '\0' ' ')"
echo "host $(hostname)"
echo "cg $(cat /proc/self/cgroup)"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
id -u; pwd; echo "env $FOO"`
	p, err := c.Exec(&specs.Process{
		Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin", "FOO=bar"}, Cwd: "/tmp",
		User: specs.User{Username: "alice"}, NoNewPrivileges: true, Capabilities: s.Process.Capabilities,
	}, IOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := readAll(t, p.IO().Stdout)
	errOut := readAll(t, p.IO().Stderr)
	if st := p.Wait(); st.Code != 0 {
		t.Fatalf("exec exit %+v: %s %s", st, out, errOut)
	}
	for _, n := range nsNames {
		want, err := os.Readlink("/proc/" + strconv.Itoa(c.Pid()) + "/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, n+" "+want+"\n") {
			t.Errorf("exec's %s namespace is not the init's %s:\n%s", n, want, out)
		}
	}
	for _, want := range []string{"init sleep 1000 \n", "host testhost\n", "\n0::/\n", "CapEff:\t0000000000000000\n", "NoNewPrivs:\t1\n", "Seccomp:\t2\n", "1000\n/tmp\n", "env bar\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in\n%s", want, out)
		}
	}
}

func TestExecErrorsAndStatus(t *testing.T) {
	e := newEnv(t)
	c := e.started(t, "exec2", testSpec("sleep", "1000"), CreateOptions{})
	_, err := c.Exec(&specs.Process{Args: []string{"nosuch"}, Env: []string{"PATH=/bin"}, Cwd: "/"}, IOOptions{})
	if err == nil || err.Error() != `exec: "nosuch": executable file not found in $PATH` {
		t.Errorf("exec nosuch: %v", err)
	}
	_, err = c.Exec(&specs.Process{Args: []string{"true"}, Cwd: "/nonexistent"}, IOOptions{})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("exec in a missing cwd: %v", err)
	}
	adj := 300
	p, err := c.Exec(&specs.Process{Args: []string{"sh", "-c", "grep -q 'CapEff:.00000000a80425fb' /proc/self/status || exit 9; [ $(cat /proc/self/oom_score_adj) = 300 ] || exit 10; exit 7"},
		Cwd: "/", OOMScoreAdj: &adj, Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 77, Hard: 77}}}, IOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st.Code != 7 {
		t.Errorf("exit status %+v", st)
	}
	// An exec'd process shows in Processes; its helper does not.
	p, err = c.Exec(&specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/"}, IOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.cg != nil {
		pids, err := c.Processes()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(pids)
		want := []int{c.Pid(), p.Pid()}
		slices.Sort(want)
		if !slices.Equal(pids, want) {
			t.Errorf("Processes = %v, want %v", pids, want)
		}
	}
	p.Signal(9)
	if st := p.Wait(); st.Code != 137 {
		t.Errorf("killed exec: %+v", st)
	}
}

func TestPause(t *testing.T) {
	e := newEnv(t)
	if e.cg == nil || !e.cg.Capabilities().Freezer {
		t.Skip("no cgroup v2 freezer on this host")
	}
	c := e.started(t, "pause1", testSpec("sh", "-c", "while true; do echo tick; sleep 0.01; done"), CreateOptions{})
	r := bufio.NewReader(c.IO().Stdout)
	r.ReadString('\n')
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	ev, err := os.ReadFile(filepath.Join(c.CgroupPath(), "cgroup.events"))
	if err != nil || !strings.Contains(string(ev), "frozen 1") {
		t.Fatalf("cgroup.events after Pause: %q %v", ev, err)
	}
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(c.Pid()) + "/stat")
	if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) == 0 || (f[0] != "S" && f[0] != "D") {
		t.Errorf("frozen init in state %v", f)
	}
	if _, err := c.Exec(&specs.Process{Args: []string{"true"}, Cwd: "/"}, IOOptions{}); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("exec in a paused container: %v", err)
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	ev, _ = os.ReadFile(filepath.Join(c.CgroupPath(), "cgroup.events"))
	if !strings.Contains(string(ev), "frozen 0") {
		t.Fatalf("cgroup.events after Resume: %q", ev)
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}

func TestTerminal(t *testing.T) {
	e := newEnv(t)
	c := e.started(t, "tty1", testSpec("sh", "-c", "tty; stty size; test -t 0 && echo stdin-tty; test -c /dev/console && echo console; read x; echo got=$x"),
		CreateOptions{IO: IOOptions{Terminal: true, ConsoleSize: [2]uint{33, 101}}})
	con := c.IO().Console
	if con == nil || c.IO().Stdout != nil {
		t.Fatalf("terminal IO = %+v", c.IO())
	}
	if _, err := con.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, con); close(done) }()
	if st := c.Wait(); st.Code != 0 {
		t.Fatalf("exit %+v", st)
	}
	con.SetReadDeadline(time.Now())
	<-done
	s := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "33 101\n", "stdin-tty\n", "console\n", "got=hello\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("want %q in %q", want, s)
		}
	}
	if err := c.Resize(40, 120); err == nil {
		t.Log("resize after exit accepted")
	}
}

func TestInitTerminal(t *testing.T) {
	e := newEnv(t)
	requireStaticSelf(t)
	c := e.started(t, "tty3", testSpec("sh", "-c", "tty; read x; echo got=$x; exit 3"),
		CreateOptions{Init: true, IO: IOOptions{Terminal: true}})
	con := c.IO().Console
	con.Write([]byte("yes\n"))
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, con); close(done) }()
	if st := c.Wait(); st.Code != 3 {
		t.Fatalf("exit %+v", st)
	}
	con.SetReadDeadline(time.Now())
	<-done
	s := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "got=yes\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("want %q in %q", want, s)
		}
	}
}

// TestResize changes the terminal size of a running container; the shell
// polls stty (by count, not time) until it sees the new size.
func TestResize(t *testing.T) {
	e := newEnv(t)
	script := `echo ready; i=0; while [ $i -lt 3000 ]; do s=$(stty size); [ "$s" = "30 80" ] && break; i=$((i+1)); sleep 0.01; done; echo "resized $s"`
	c := e.started(t, "resize1", testSpec("sh", "-c", script), CreateOptions{IO: IOOptions{Terminal: true, ConsoleSize: [2]uint{40, 100}}})
	r := bufio.NewReader(c.IO().Console)
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "ready") {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := c.Resize(30, 80); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "resized 30 80") {
		t.Fatalf("after resize: %q, %v", line, err)
	}
	c.Wait()
}

func TestExecTerminal(t *testing.T) {
	e := newEnv(t)
	c := e.started(t, "tty2", testSpec("sleep", "1000"), CreateOptions{})
	p, err := c.Exec(&specs.Process{Args: []string{"sh", "-c", "tty; stty size; echo uid=$(id -u); echo owner=$(ls -ln $(tty) | awk '{print $3}'); read x; echo got=$x"}, Cwd: "/", User: specs.User{Username: "alice"}},
		IOOptions{Terminal: true, ConsoleSize: [2]uint{20, 70}})
	if err != nil {
		t.Fatal(err)
	}
	con := p.IO().Console
	con.Write([]byte("hi\n"))
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, con); close(done) }()
	if st := p.Wait(); st.Code != 0 {
		t.Fatalf("exit %+v", st)
	}
	con.SetReadDeadline(time.Now())
	<-done
	s := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "20 70\n", "uid=1000\n", "owner=1000\n", "got=hi\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("want %q in %q", want, s)
		}
	}
}

func TestStdinPipe(t *testing.T) {
	e := newEnv(t)
	c := e.started(t, "stdin1", testSpec("sh", "-c", "tr a-z A-Z"), CreateOptions{IO: IOOptions{OpenStdin: true}})
	go func() {
		c.IO().Stdin.Write([]byte("shout\n"))
		c.IO().Stdin.Close()
	}()
	out := readAll(t, c.IO().Stdout)
	if st := c.Wait(); st.Code != 0 || out != "SHOUT\n" {
		t.Fatalf("exit %+v, out %q", st, out)
	}
	// A megabyte goes through whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	c3 := e.started(t, "stdin3", testSpec("wc", "-c"), CreateOptions{IO: IOOptions{OpenStdin: true}})
	go func() {
		c3.IO().Stdin.Write(big)
		c3.IO().Stdin.Close()
	}()
	if out := strings.TrimSpace(readAll(t, c3.IO().Stdout)); out != strconv.Itoa(len(big)) {
		t.Fatalf("wc -c of a megabyte = %q", out)
	}
	// Without OpenStdin the process reads /dev/null.
	c2 := e.started(t, "stdin2", testSpec("sh", "-c", "cat; echo eof"), CreateOptions{})
	if out := readAll(t, c2.IO().Stdout); out != "eof\n" || c2.IO().Stdin != nil {
		t.Fatalf("out %q, stdin %v", out, c2.IO().Stdin)
	}
}

func TestInitReapsZombies(t *testing.T) {
	e := newEnv(t)
	requireStaticSelf(t)
	// The shell double-forks orphans that die at once. Reaping is
	// asynchronous, so the script waits (bounded by a count, not a clock)
	// for the zombies to go; without a reaper they never would.
	script := `for i in 1 2 3; do (sleep 0 &) ; done
n=0; while [ $n -lt 2000 ] && ps -o stat | grep -q '^Z'; do n=$((n+1)); sleep 0.01; done
echo "pid1 $(cat /proc/1/comm)"; ps -o pid,ppid,stat,comm; ps -o stat | grep -c '^Z' | sed 's/^/zombies=/'; exit 4`
	out, _, st := e.run(t, testSpec("sh", "-c", script), CreateOptions{Init: true})
	if st.Code != 4 {
		t.Fatalf("exit %+v: %s", st, out)
	}
	if !strings.Contains(out, "pid1 docker-init\n") || !strings.Contains(out, "zombies=0\n") {
		t.Fatalf("out:\n%s", out)
	}
}
