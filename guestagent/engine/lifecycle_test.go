//go:build linux

package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

var bg = context.Background()

func create(t *testing.T, e *Engine, name string, cfg container.Config, hc *container.HostConfig) string {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "busybox"
	}
	resp, err := e.ContainerCreate(bg, name, &container.CreateRequest{Config: &cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if len(resp.ID) != 64 {
		t.Fatalf("id %q", resp.ID)
	}
	return resp.ID
}

func waitExit(t *testing.T, e *Engine, ref string, cond container.WaitCondition) int64 {
	t.Helper()
	ch, err := e.ContainerWait(bg, ref, cond)
	if err != nil {
		t.Fatalf("wait %s: %v", ref, err)
	}
	return (<-ch).StatusCode
}

func statusOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case isNotFound(err):
		return "404"
	case isNotModified(err):
		return "304"
	}
	var c interface{ Conflict() }
	var i interface{ InvalidParameter() }
	switch {
	case asErr(err, &c):
		return "409"
	case asErr(err, &i):
		return "400"
	}
	return "500"
}

func asErr[T any](err error, target *T) bool {
	for err != nil {
		if v, ok := err.(T); ok {
			*target = v
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestCreateErrors(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "web", container.Config{Cmd: []string{"echo", "hi"}}, nil)
	tests := []struct {
		name   string
		cname  string
		cfg    container.Config
		hc     *container.HostConfig
		status string
		msg    string
	}{
		{"name conflict", "web", container.Config{Image: "busybox"}, nil, "409",
			`Conflict. The container name "/web" is already in use by container "` + id + `". You have to remove (or rename) that container to be able to reuse that name.`},
		{"bad name", "-x", container.Config{Image: "busybox"}, nil, "400", "Invalid container name (-x)"},
		{"no image", "", container.Config{Image: "nope"}, nil, "404", "No such image: nope"},
		{"no command", "", container.Config{Image: "nocmd"}, nil, "400", "No command specified"},
		{"bad restart", "", container.Config{Image: "busybox"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, "400", "invalid restart policy"},
		{"rm with restart", "", container.Config{Image: "busybox"}, &container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, "400", "can't create 'AutoRemove' container with restart policy"},
		{"bad cap", "", container.Config{Image: "busybox"}, &container.HostConfig{CapAdd: []string{"FLY"}}, "400", "unknown capability"},
		{"relative workdir", "", container.Config{Image: "busybox", WorkingDir: "rel"}, nil, "400", "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{"bad stop signal", "", container.Config{Image: "busybox", StopSignal: "SIGNOPE"}, nil, "400", "Invalid signal: SIGNOPE"},
		{"bad log driver", "", container.Config{Image: "busybox"}, &container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}, "400", "no log driver named 'syslog'"},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		_, err := e.ContainerCreate(bg, tt.cname, &container.CreateRequest{Config: &cfg, HostConfig: tt.hc})
		if got := statusOf(err); got != tt.status || (tt.msg != "" && !strings.Contains(err.Error(), tt.msg)) {
			t.Errorf("%s: %s %v, want %s %q", tt.name, got, err, tt.status, tt.msg)
		}
	}
}

func TestLookup(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "alpha", container.Config{Cmd: []string{"echo"}}, nil)
	for _, ref := range []string{id, id[:12], id[:5], "alpha", "/alpha"} {
		c, err := e.lookup(ref)
		if err != nil || c.m.ID != id {
			t.Errorf("lookup(%q) = %v", ref, err)
		}
	}
	_, err := e.lookup("nope")
	if statusOf(err) != "404" || err.Error() != "No such container: nope" {
		t.Errorf("lookup(nope) = %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	e, rt, imgs := newTestEngine(t, "")
	_, live, cancel := e.SubscribeEvents(bg, time.Time{}, time.Time{}, api.Filters{"type": {"container"}, "container": {"one"}})
	defer cancel()
	id := create(t, e, "one", container.Config{Cmd: []string{"echo", "hello", "world"}, Labels: map[string]string{"k": "v"}}, nil)
	quoted := create(t, e, "", container.Config{Cmd: []string{"echo", "a b", "c"}}, nil)
	if list, _ := e.ContainerList(bg, api.ListOptions{All: true, Filters: api.Filters{"id": {quoted}}}); len(list) != 1 || list[0].Command != "echo 'a b' c" {
		t.Errorf("quoted command: %+v", list)
	}
	e.ContainerRemove(bg, quoted, api.RemoveOptions{})

	if err := e.ContainerStart(bg, "one"); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// A second wait on an exited container answers at once.
	if code := waitExit(t, e, id, ""); code != 0 {
		t.Fatalf("exit %d", code)
	}
	ins, err := e.ContainerInspect(bg, "one", false)
	if err != nil {
		t.Fatal(err)
	}
	if ins.State.Status != container.StateExited || ins.State.ExitCode != 0 || ins.Name != "/one" || ins.Path != "echo" ||
		!slices.Equal(ins.Args, []string{"hello", "world"}) || ins.Config.Hostname != id[:12] || ins.State.StartedAt == "0001-01-01T00:00:00Z" {
		t.Errorf("inspect: %+v %+v", ins.State, ins)
	}
	if ins.Config.Labels["k"] != "v" || ins.Config.Labels["from"] != "image" {
		t.Errorf("labels %v", ins.Config.Labels)
	}
	spec := rt.lastSpec()
	if spec.Hostname != id[:12] || !slices.Contains(spec.Process.Env, "HOSTNAME="+id[:12]) || !slices.Contains(spec.Process.Env, "IMG=1") {
		t.Errorf("spec hostname %q env %q", spec.Hostname, spec.Process.Env)
	}
	var dsts []string
	for _, m := range spec.Mounts {
		dsts = append(dsts, m.Destination)
	}
	for _, want := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
		if !slices.Contains(dsts, want) {
			t.Errorf("spec lacks mount %s: %v", want, dsts)
		}
	}
	if b, _ := os.ReadFile(ins.HostnamePath); string(b) != id[:12]+"\n" {
		t.Errorf("hostname file %q", b)
	}

	msgs, tty, err := e.ContainerLogs(bg, "one", api.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"})
	if err != nil || tty {
		t.Fatal(err, tty)
	}
	var lines []string
	for m := range msgs {
		lines = append(lines, m.Stream+":"+string(m.Line))
	}
	if !slices.Equal(lines, []string{"stdout:hello world\n"}) {
		t.Errorf("logs %q", lines)
	}

	list, err := e.ContainerList(bg, api.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Errorf("ps without -a: %v %v", list, err)
	}
	list, err = e.ContainerList(bg, api.ListOptions{All: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("ps -a: %v %v", list, err)
	}
	s := list[0]
	if s.Names[0] != "/one" || s.Command != "echo hello world" || s.State != container.StateExited || !strings.HasPrefix(s.Status, "Exited (0) ") || s.Image != "busybox" {
		t.Errorf("summary %+v", s)
	}

	if err := e.ContainerRemove(bg, "one", api.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(ins.HostnamePath)); !os.IsNotExist(err) {
		t.Errorf("container dir left: %v", err)
	}
	if !slices.Contains(imgs.removed, id) {
		t.Errorf("rootfs not removed")
	}
	var actions []string
	for len(actions) < 4 {
		m := <-live
		actions = append(actions, string(m.Action))
		if m.Actor.ID != id || m.Actor.Attributes["name"] != "one" || m.Actor.Attributes["image"] != "busybox" {
			t.Errorf("event actor %+v", m.Actor)
		}
		if m.Action == events.ActionDie && m.Actor.Attributes["exitCode"] != "0" {
			t.Errorf("die event %+v", m.Actor.Attributes)
		}
	}
	if !slices.Equal(actions, []string{"create", "start", "die", "destroy"}) {
		t.Errorf("events %v", actions)
	}
}

func TestStartErrors(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	tests := []struct {
		cmd  string
		code int
	}{
		{"notfound", 127},
		{"noexec", 126},
	}
	for _, tt := range tests {
		id := create(t, e, "", container.Config{Cmd: []string{tt.cmd}}, nil)
		err := e.ContainerStart(bg, id)
		if err == nil || statusOf(err) != "400" {
			t.Fatalf("%s: start err %v", tt.cmd, err)
		}
		ins, _ := e.ContainerInspect(bg, id, false)
		if ins.State.ExitCode != tt.code || ins.State.Status != container.StateCreated || ins.State.Error == "" {
			t.Errorf("%s: state %+v", tt.cmd, ins.State)
		}
	}
	// --rm containers are removed when start fails; "removed" waiters wake.
	id := create(t, e, "", container.Config{Cmd: []string{"notfound"}}, &container.HostConfig{AutoRemove: true})
	ch, err := e.ContainerWait(bg, id, container.WaitConditionRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStart(bg, id); err == nil {
		t.Fatal("start succeeded")
	}
	<-ch
	if _, err := e.lookup(id); !isNotFound(err) {
		t.Errorf("auto-remove after failed start: %v", err)
	}
}

func TestStateTransitions(t *testing.T) {
	e, rt, _ := newTestEngine(t, "")
	id := create(t, e, "s1", container.Config{Cmd: []string{"sleep"}, StopSignal: "SIGUSR1"}, nil)
	steps := []struct {
		name   string
		do     func() error
		status string
		msg    string
	}{
		{"kill created", func() error { return e.ContainerKill(bg, "s1", "") }, "409", "is not running"},
		{"pause created", func() error { return e.ContainerPause(bg, "s1") }, "409", "is not running"},
		{"stop created", func() error { return e.ContainerStop(bg, "s1", "", nil) }, "304", ""},
		{"start", func() error { return e.ContainerStart(bg, "s1") }, "ok", ""},
		{"start again", func() error { return e.ContainerStart(bg, "s1") }, "304", ""},
		{"rm running", func() error { return e.ContainerRemove(bg, "s1", api.RemoveOptions{}) }, "409",
			`cannot remove container "/s1": container is running: stop the container before removing or force remove`},
		{"pause", func() error { return e.ContainerPause(bg, "s1") }, "ok", ""},
		{"pause again", func() error { return e.ContainerPause(bg, "s1") }, "409", "already paused"},
		{"start paused", func() error { return e.ContainerStart(bg, "s1") }, "409", "cannot start a paused container"},
		{"unpause", func() error { return e.ContainerUnpause(bg, "s1") }, "ok", ""},
		{"unpause again", func() error { return e.ContainerUnpause(bg, "s1") }, "409", "is not paused"},
		{"rename", func() error { return e.ContainerRename(bg, "s1", "t1") }, "ok", ""},
		{"rename same", func() error { return e.ContainerRename(bg, "t1", "t") }, "400", ""},
		{"resize", func() error { return e.ContainerResize(bg, "t1", 30, 100) }, "ok", ""},
		{"stop", func() error { return e.ContainerStop(bg, "t1", "", nil) }, "ok", ""},
		{"stop again", func() error { return e.ContainerStop(bg, "t1", "", nil) }, "304", ""},
		{"rm", func() error { return e.ContainerRemove(bg, "t1", api.RemoveOptions{}) }, "ok", ""},
		{"rm again", func() error { return e.ContainerRemove(bg, "t1", api.RemoveOptions{}) }, "404", "No such container: t1"},
	}
	for _, s := range steps {
		err := s.do()
		if got := statusOf(err); got != s.status || (s.msg != "" && !strings.Contains(err.Error(), s.msg)) {
			t.Fatalf("%s: %s %v, want %s %q", s.name, got, err, s.status, s.msg)
		}
	}
	_ = id
	h := rt.handles[0]
	if !h.deleted {
		t.Error("runtime container not deleted after exit")
	}
}

func TestStopUsesStopSignalThenKill(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"ignore-term"}}, nil)
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := e.ContainerStop(bg, id, "", &zero); err != nil {
		t.Fatal(err)
	}
	ins, _ := e.ContainerInspect(bg, id, false)
	if ins.State.ExitCode != 137 || ins.State.Running {
		t.Errorf("state after stop -t 0: %+v", ins.State)
	}
	// The image's StopSignal (SIGUSR1) is what stop sends first.
	id = create(t, e, "", container.Config{Image: "ep", Entrypoint: []string{"sleep"}}, nil)
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerStop(bg, id, "", nil); err != nil {
		t.Fatal(err)
	}
	ins, _ = e.ContainerInspect(bg, id, false)
	if ins.State.ExitCode != 128+10 {
		t.Errorf("exit after SIGUSR1 stop: %d", ins.State.ExitCode)
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"exit", "3"}}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}})
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, container.WaitConditionNotRunning); code != 3 {
		t.Fatalf("exit %d", code)
	}
	ins, _ := e.ContainerInspect(bg, id, false)
	if ins.RestartCount != 2 || ins.State.Status != container.StateExited {
		t.Errorf("restart count %d state %s", ins.RestartCount, ins.State.Status)
	}
}

func TestRestartPolicyAlwaysStoppedByUser(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"exit", "0"}}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}})
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	// Wait for a few restarts.
	for range 3 {
		waitExit(t, e, id, container.WaitConditionNextExit)
	}
	if err := e.ContainerStop(bg, id, "", nil); err != nil && !isNotModified(err) {
		t.Fatal(err)
	}
	waitExit(t, e, id, container.WaitConditionNotRunning)
	ins, _ := e.ContainerInspect(bg, id, false)
	if ins.RestartCount < 2 || ins.State.Running || ins.State.Restarting {
		t.Errorf("after stop: count %d state %+v", ins.RestartCount, ins.State)
	}
}

// streams is an api.StreamsFunc over in-memory pipes.
type streams struct {
	mu          sync.Mutex
	once        sync.Once
	taken       chan struct{} // closed when the streams were taken
	multiplexed bool
	stdin       io.ReadCloser
	out, errb   bytes.Buffer
}

func (s *streams) get(mux bool) (io.ReadCloser, io.Writer, io.Writer, error) {
	s.mu.Lock()
	s.multiplexed = mux
	s.mu.Unlock()
	s.once.Do(func() {
		if s.taken != nil {
			close(s.taken)
		}
	})
	return s.stdin, lockedWriter{&s.mu, &s.out}, lockedWriter{&s.mu, &s.errb}, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestAttachStdinOnce(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true, AttachStdin: true}, nil)
	s := &streams{stdin: io.NopCloser(strings.NewReader("one\ntwo\n"))}
	done := make(chan error, 1)
	go func() {
		done <- e.ContainerAttach(bg, id, api.AttachOptions{GetStreams: s.get, UseStdin: true, UseStdout: true, UseStderr: true, Stream: true})
	}()
	// Attach registers before start, as docker run does; start once the
	// streams were taken.
	for {
		s.mu.Lock()
		ok := s.multiplexed
		s.mu.Unlock()
		if ok {
			break
		}
		runtimeGosched()
	}
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, id, container.WaitConditionNotRunning); code != 0 {
		t.Fatalf("exit %d", code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out.String() != "one\ntwo\n" {
		t.Errorf("attached output %q", s.out.String())
	}
}

func TestExec(t *testing.T) {
	e, rt, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"sleep"}, Env: []string{"A=1"}}, nil)
	if _, err := e.ExecCreate(bg, id, &container.ExecCreateRequest{Cmd: []string{"env"}}); statusOf(err) != "409" {
		t.Fatalf("exec in created container: %v", err)
	}
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	defer e.ContainerRemove(bg, id, api.RemoveOptions{Force: true})
	xid, err := e.ExecCreate(bg, id, &container.ExecCreateRequest{Cmd: []string{"env"}, Env: []string{"B=2"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &streams{stdin: io.NopCloser(strings.NewReader(""))}
	if err := e.ExecStart(bg, xid, api.ExecStartOptions{GetStreams: s.get}); err != nil {
		t.Fatal(err)
	}
	if out := s.out.String(); !strings.Contains(out, "A=1\n") || !strings.Contains(out, "B=2\n") {
		t.Errorf("exec env output %q", out)
	}
	ins, err := e.ExecInspect(bg, xid)
	if err != nil || ins.Running || ins.ExitCode == nil || *ins.ExitCode != 0 || ins.ContainerID != id {
		t.Errorf("exec inspect %+v %v", ins, err)
	}
	if err := e.ExecStart(bg, xid, api.ExecStartOptions{GetStreams: s.get}); statusOf(err) != "409" {
		t.Errorf("second start: %v", err)
	}
	// A missing command reports 127 in exec inspect.
	xid, _ = e.ExecCreate(bg, id, &container.ExecCreateRequest{Cmd: []string{"notfound"}, AttachStdout: true})
	if err := e.ExecStart(bg, xid, api.ExecStartOptions{GetStreams: s.get}); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("exec notfound: %v", err)
	}
	ins, _ = e.ExecInspect(bg, xid)
	if ins.ExitCode == nil || *ins.ExitCode != 127 {
		t.Errorf("exec notfound exit %v", ins.ExitCode)
	}
	if _, err := e.ExecInspect(bg, "nope"); statusOf(err) != "404" {
		t.Errorf("inspect missing exec: %v", err)
	}
	if rt.handles[0].execs != 1 {
		t.Errorf("runtime saw %d execs", rt.handles[0].execs)
	}
}

func TestListFilters(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	a := create(t, e, "aa", container.Config{Cmd: []string{"exit", "0"}, Labels: map[string]string{"app": "x"}}, nil)
	b := create(t, e, "bb", container.Config{Cmd: []string{"exit", "2"}, Labels: map[string]string{"app": "y"}}, nil)
	c := create(t, e, "cc", container.Config{Cmd: []string{"sleep"}}, nil)
	create(t, e, "dd", container.Config{Image: "ep"}, nil)
	for _, id := range []string{a, b} {
		e.ContainerStart(bg, id)
		waitExit(t, e, id, "")
	}
	if err := e.ContainerStart(bg, c); err != nil {
		t.Fatal(err)
	}
	defer e.ContainerRemove(bg, c, api.RemoveOptions{Force: true})
	tests := []struct {
		name    string
		opts    api.ListOptions
		want    []string
		wantErr string
	}{
		{"running", api.ListOptions{}, []string{"cc"}, ""},
		{"all newest first", api.ListOptions{All: true}, []string{"dd", "cc", "bb", "aa"}, ""},
		{"limit", api.ListOptions{Limit: 2}, []string{"dd", "cc"}, ""},
		{"status exited", api.ListOptions{Filters: api.Filters{"status": {"exited"}}}, []string{"bb", "aa"}, ""},
		{"status created", api.ListOptions{Filters: api.Filters{"status": {"created"}}}, []string{"dd"}, ""},
		{"exited=2", api.ListOptions{Filters: api.Filters{"exited": {"2"}}}, []string{"bb"}, ""},
		{"label key", api.ListOptions{All: true, Filters: api.Filters{"label": {"app"}}}, []string{"bb", "aa"}, ""},
		{"label value", api.ListOptions{All: true, Filters: api.Filters{"label": {"app=y"}}}, []string{"bb"}, ""},
		{"name regex", api.ListOptions{All: true, Filters: api.Filters{"name": {"^/(aa|bb)$"}}}, []string{"bb", "aa"}, ""},
		{"name without slash", api.ListOptions{All: true, Filters: api.Filters{"name": {"^bb$"}}}, []string{"bb"}, ""},
		{"id prefix", api.ListOptions{All: true, Filters: api.Filters{"id": {a[:6]}}}, []string{"aa"}, ""},
		{"ancestor", api.ListOptions{All: true, Filters: api.Filters{"ancestor": {"ep"}}}, []string{"dd"}, ""},
		{"before", api.ListOptions{All: true, Filters: api.Filters{"before": {"cc"}}}, []string{"bb", "aa"}, ""},
		{"since", api.ListOptions{All: true, Filters: api.Filters{"since": {"bb"}}}, []string{"dd", "cc"}, ""},
		{"network", api.ListOptions{All: true, Filters: api.Filters{"network": {"bridge"}}}, []string{"dd", "cc", "bb", "aa"}, ""},
		{"network host", api.ListOptions{All: true, Filters: api.Filters{"network": {"host"}}}, nil, ""},
		{"health none", api.ListOptions{Filters: api.Filters{"health": {"none"}}}, []string{"cc"}, ""},
		{"publish", api.ListOptions{All: true, Filters: api.Filters{"publish": {"80"}}}, nil, ""},
		{"bad key", api.ListOptions{Filters: api.Filters{"colour": {"x"}}}, nil, "invalid filter 'colour'"},
		{"bad status", api.ListOptions{Filters: api.Filters{"status": {"sleepy"}}}, nil, "invalid filter 'status=sleepy'"},
	}
	for _, tt := range tests {
		got, err := e.ContainerList(bg, tt.opts)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var names []string
		for _, s := range got {
			names = append(names, strings.TrimPrefix(s.Names[0], "/"))
		}
		if !slices.Equal(names, tt.want) && (len(names) != 0 || len(tt.want) != 0) {
			t.Errorf("%s: %v, want %v", tt.name, names, tt.want)
		}
	}
	rep, err := e.ContainerPrune(bg, api.Filters{"label": {"app"}})
	if err != nil || len(rep.ContainersDeleted) != 2 {
		t.Errorf("prune: %+v %v", rep, err)
	}
}

func TestPersistenceAndRestore(t *testing.T) {
	root := t.TempDir()
	e, _, imgs := newTestEngine(t, root)
	exited := create(t, e, "exited", container.Config{Cmd: []string{"exit", "4"}}, nil)
	e.ContainerStart(bg, exited)
	waitExit(t, e, exited, "")
	running := create(t, e, "running", container.Config{Cmd: []string{"sleep"}}, nil)
	always := create(t, e, "always", container.Config{Cmd: []string{"sleep"}}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "always"}})
	stoppedUnless := create(t, e, "stopped-unless", container.Config{Cmd: []string{"sleep"}}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}})
	for _, id := range []string{running, always, stoppedUnless} {
		if err := e.ContainerStart(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ContainerStop(bg, stoppedUnless, "", nil); err != nil {
		t.Fatal(err)
	}
	// The engine dies without stopping anything: a new one opens the root.
	e2, rt2, _ := func() (*Engine, *fakeRuntime, *fakeImages) {
		rt := &fakeRuntime{}
		e, err := New(Config{Root: root, Images: imgs, Runtime: rt, DefaultSpec: testDefaultSpec})
		if err != nil {
			t.Fatal(err)
		}
		e.loopback = func(int) error { return nil }
		return e, rt, imgs
	}()
	e2.Restore(bg)
	want := map[string]struct {
		status container.ContainerState
		code   int
	}{
		exited:        {container.StateExited, 4},
		running:       {container.StateExited, 255},
		always:        {container.StateRunning, 0},
		stoppedUnless: {container.StateExited, 143},
	}
	list, err := e2.ContainerList(bg, api.ListOptions{All: true})
	if err != nil || len(list) != 4 {
		t.Fatalf("ps -a after restart: %d %v", len(list), err)
	}
	for id, w := range want {
		ins, err := e2.ContainerInspect(bg, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if ins.State.Status != w.status || ins.State.ExitCode != w.code {
			t.Errorf("%s: %s %d, want %s %d", ins.Name, ins.State.Status, ins.State.ExitCode, w.status, w.code)
		}
	}
	if len(rt2.handles) != 1 {
		t.Errorf("restore started %d containers, want 1", len(rt2.handles))
	}
	// Exited containers start again, and names stay reserved.
	if err := e2.ContainerStart(bg, "exited"); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.ContainerCreate(bg, "running", &container.CreateRequest{Config: &container.Config{Image: "busybox"}}); statusOf(err) != "409" {
		t.Errorf("name after reload: %v", err)
	}
	e2.Shutdown(bg)
	ins, _ := e2.ContainerInspect(bg, always, false)
	if ins.State.Running {
		t.Errorf("always container still running after shutdown")
	}
}

func TestUpdateAndWarnings(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	e.cfg.Limits = Limits{}
	pids := int64(10)
	resp, err := e.ContainerCreate(bg, "", &container.CreateRequest{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sleep"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8, CPUShares: 512, PidsLimit: &pids}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Warnings) != 4 || !strings.Contains(resp.Warnings[0], "memory limit") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	up, err := e.ContainerUpdate(bg, resp.ID, &container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "always"}, Resources: container.Resources{Memory: 128 << 20}})
	if err != nil || len(up.Warnings) != 1 {
		t.Fatalf("update: %+v %v", up, err)
	}
	ins, _ := e.ContainerInspect(bg, resp.ID, false)
	if ins.HostConfig.RestartPolicy.Name != "always" || ins.HostConfig.Memory != 128<<20 {
		t.Errorf("after update: %+v", ins.HostConfig.RestartPolicy)
	}
	info, _ := e.SystemInfo(bg)
	if !slices.Contains(info.Warnings, "WARNING: No memory limit support") || info.Containers != 1 || info.ContainersStopped != 1 {
		t.Errorf("info %+v", info.Warnings)
	}
}

// TestAttachStdinEndKeepsStreaming: without StdinOnce the end of the
// client's input leaves the container's stdin open and the session
// streaming until the container ends.
func TestAttachStdinEndKeepsStreaming(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	id := create(t, e, "", container.Config{Cmd: []string{"cat"}, OpenStdin: true}, nil)
	if err := e.ContainerStart(bg, id); err != nil {
		t.Fatal(err)
	}
	s := &streams{stdin: io.NopCloser(strings.NewReader("x\n")), taken: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- e.ContainerAttach(bg, id, api.AttachOptions{GetStreams: s.get, UseStdin: true, UseStdout: true, Stream: true})
	}()
	<-s.taken
	select {
	case err := <-done:
		t.Fatalf("attach ended at the end of its input: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := e.ContainerKill(bg, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out.String() != "x\n" {
		t.Errorf("output %q", s.out.String())
	}
}
