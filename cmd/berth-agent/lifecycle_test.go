//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

// TestCreateStartAttachWait drives a container through create, start -a -i,
// wait, and attach.
func TestCreateStartAttachWait(t *testing.T) {
	e := needEngine(t)
	t.Run("create then start -a -i", func(t *testing.T) {
		name := uniqueName("csa")
		id := e.create(t, "-i", "--name", name, testImage, "sh", "-c", "read x; echo got $x; exit 4")
		if doc := e.inspect(t, id); doc.State.Status != "created" {
			t.Errorf("after create: Status %s, want created", doc.State.Status)
		}
		r := e.docker(strings.NewReader("abc\n"), "start", "-a", "-i", name)
		if r.code != 4 || r.stdout != "got abc\n" {
			t.Errorf("start -a -i: want exit 4 and %q\n%v", "got abc\n", r)
		}
		if got := e.ok(t, "wait", id); got != "4" {
			t.Errorf("wait after exit: %q, want 4", got)
		}
		doc := e.inspect(t, id)
		if doc.State.Status != "exited" || doc.State.ExitCode != 4 || doc.State.FinishedAt == "" {
			t.Errorf("after exit: %+v", doc.State)
		}
	})
	t.Run("start, then wait", func(t *testing.T) {
		id := e.create(t, testImage, "sh", "-c", "sleep 0.5; exit 6")
		e.ok(t, "start", id)
		if got := e.ok(t, "wait", id); got != "6" {
			t.Errorf("wait: %q, want 6", got)
		}
	})
	t.Run("attach with piped stdin", func(t *testing.T) {
		id := e.runDetached(t, "-i", testImage, "sh", "-c", "while read x; do echo got $x; done; exit 5")
		// Each line typed into the attach session is answered through it.
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "attach", id)
		cmd.Env = e.env()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(stdout)
		for _, word := range []string{"one", "two"} {
			if _, err := io.WriteString(stdin, word+"\n"); err != nil {
				t.Fatalf("write attach stdin: %v", err)
			}
			if line, err := br.ReadString('\n'); line != "got "+word+"\n" {
				t.Errorf("attach answer %q (%v), want %q", line, err, "got "+word+"\n")
			}
		}
		stdin.Close()
		// The session goes on streaming output until the container ends.
		e.docker(nil, "kill", id)
		rest, _ := io.ReadAll(br)
		_ = cmd.Wait()
		if ctx.Err() != nil {
			t.Errorf("docker attach did not end when the container did; killed after %s (output %q)", cmdTimeout, rest)
		}
	})
	t.Run("attach to output", func(t *testing.T) {
		id := e.runDetached(t, testImage, "sh", "-c", "sleep 1; echo late; echo late-err >&2")
		r := e.docker(nil, "attach", "--no-stdin", id)
		if r.code != 0 || r.stdout != "late\n" || r.stderr != "late-err\n" {
			t.Errorf("attach: want stdout late, stderr late-err\n%v", r)
		}
	})
}

// TestLogs checks docker logs with --tail, --timestamps, --since, --until
// and --follow.
func TestLogs(t *testing.T) {
	e := needEngine(t)
	id := e.runDetached(t, testImage, "sh", "-c", "echo one; sleep 1; echo two >&2; sleep 1; echo three")
	e.ok(t, "wait", id)
	r := e.docker(nil, "logs", id)
	if r.code != 0 || r.stdout != "one\nthree\n" || r.stderr != "two\n" {
		t.Fatalf("logs: want stdout one, three and stderr two\n%v", r)
	}
	if got := e.ok(t, "logs", "--tail", "1", id); got != "three" {
		t.Errorf("--tail 1: %q", got)
	}
	if r := e.docker(nil, "logs", "--tail", "2", id); r.stdout != "three\n" || r.stderr != "two\n" {
		t.Errorf("--tail 2: %v", r)
	}
	if r := e.docker(nil, "logs", "--tail", "0", id); r.stdout != "" || r.stderr != "" {
		t.Errorf("--tail 0: %v", r)
	}
	// --timestamps: each line starts with an RFC 3339 time, in order.
	r = e.docker(nil, "logs", "--timestamps", id)
	stamps := map[string]time.Time{}
	for _, line := range append(nonEmptyLines(r.stdout), nonEmptyLines(r.stderr)...) {
		ts, text, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("--timestamps line %q", line)
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("--timestamps line %q: %v", line, err)
		}
		stamps[text] = tm
	}
	if len(stamps) != 3 || !stamps["one"].Before(stamps["two"]) || !stamps["two"].Before(stamps["three"]) {
		t.Fatalf("--timestamps: %v\n%v", stamps, r)
	}
	two := stamps["two"].Format(time.RFC3339Nano)
	if r := e.docker(nil, "logs", "--since", two, id); r.stdout != "three\n" || r.stderr != "two\n" {
		t.Errorf("--since %s: want two and three\n%v", two, r)
	}
	if r := e.docker(nil, "logs", "--until", two, id); r.stdout != "one\n" || r.stderr != "two\n" {
		t.Errorf("--until %s: want one and two\n%v", two, r)
	}
	if r := e.docker(nil, "logs", "--since", stamps["three"].Add(time.Second).Format(time.RFC3339Nano), id); r.stdout != "" || r.stderr != "" {
		t.Errorf("--since after the last line: %v", r)
	}

	t.Run("follow", func(t *testing.T) {
		id := e.runDetached(t, testImage, "sh", "-c", "echo first; sleep 2; echo second")
		r := e.docker(nil, "logs", "--follow", id)
		if r.code != 0 || r.stdout != "first\nsecond\n" {
			t.Errorf("logs --follow: want first, second and exit 0\n%v", r)
		}
	})
	t.Run("follow with tail", func(t *testing.T) {
		id := e.runDetached(t, "-i", testImage, "sh", "-c", "echo a; echo b; read x; echo c")
		// Read the followed stream line by line; the container waits for
		// stdin, which is sent once "b" arrived, so "c" must come through
		// the live follow.
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "logs", "--follow", "--tail", "1", id)
		cmd.Env = e.env()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		first, _ := br.ReadString('\n')
		if first != "b\n" {
			t.Errorf("first followed line %q, want b", first)
		}
		e.okIn(t, "go\n", "attach", id)
		rest, _ := io.ReadAll(br)
		if string(rest) != "c\n" {
			t.Errorf("followed rest %q, want c", rest)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("logs --follow: %v", err)
		}
	})
}

// TestStopKillRestart checks stop with signal and timeout, kill -s, and
// restart.
func TestStopKillRestart(t *testing.T) {
	e := needEngine(t)
	loop := "while :; do sleep 0.1; done"
	tests := []struct {
		name   string
		script string
		verb   []string
		code   int
	}{
		{"stop sends TERM", `trap "exit 42" TERM; ` + loop, []string{"stop", "-t", "30"}, 42},
		{"stop -s", `trap "exit 10" USR1; ` + loop, []string{"stop", "-s", "USR1", "-t", "30"}, 10},
		{"stop -t kills after timeout", `trap "" TERM; ` + loop, []string{"stop", "-t", "1"}, 137},
		{"kill", loop, []string{"kill"}, 137},
		{"kill -s", `trap "exit 12" USR2; ` + loop, []string{"kill", "-s", "USR2"}, 12},
		{"kill -s by number", `trap "exit 13" HUP; ` + loop, []string{"kill", "-s", "1"}, 13},
		// The shell is busy before it sets its trap; until then a signal
		// to it (PID 1) is dropped, so the wait above must not end early.
		{"kill -s after a slow start", `i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; trap "exit 14" HUP; ` + loop, []string{"kill", "-s", "HUP"}, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := e.runDetached(t, testImage, "sh", "-c", tt.script)
			// The trap must be set before the signal is sent: a shell that
			// is PID 1 never gets a signal it has no handler for. The
			// shell's own command line names sleep as soon as it runs, so
			// wait for a sleep process, which the loop after the trap
			// starts.
			eventually(t, "container running its loop", func() (bool, string) {
				out := e.docker(nil, "top", id).stdout
				for _, l := range strings.Split(out, "\n") {
					if strings.HasSuffix(strings.TrimSpace(l), " sleep 0.1") {
						return true, out
					}
				}
				return false, out
			})
			e.ok(t, append(tt.verb, id)...)
			doc := e.waitState(t, id, "exited")
			if doc.State.ExitCode != tt.code {
				t.Errorf("exit code %d, want %d", doc.State.ExitCode, tt.code)
			}
		})
	}
	t.Run("kill a stopped container", func(t *testing.T) {
		id := e.create(t, testImage, "true")
		if code, r := e.code("kill", id); code == 0 {
			t.Errorf("kill of a created container succeeded\n%v", r)
		}
	})
	t.Run("restart", func(t *testing.T) {
		id := e.runDetached(t, testImage, "sleep", "1000")
		before := e.inspect(t, id)
		e.ok(t, "restart", "-t", "1", id)
		after := e.inspect(t, id)
		if !after.State.Running || after.State.Pid == before.State.Pid || after.State.StartedAt == before.State.StartedAt {
			t.Errorf("restart: before %+v, after %+v", before.State, after.State)
		}
		// restart of an exited container starts it.
		e.ok(t, "stop", "-t", "1", id)
		e.ok(t, "restart", id)
		if doc := e.inspect(t, id); !doc.State.Running {
			t.Errorf("restart of a stopped container: %+v", doc.State)
		}
	})
	t.Run("start an exited container again", func(t *testing.T) {
		id := e.runDetached(t, testImage, "echo", "again")
		e.ok(t, "wait", id)
		e.ok(t, "start", "-a", id)
		if got := e.ok(t, "logs", id); got != "again\nagain" {
			t.Errorf("logs after two runs: %q", got)
		}
	})
}

// TestRemove checks rm, rm -f and rm -v.
func TestRemove(t *testing.T) {
	e := needEngine(t)
	id := e.runDetached(t, testImage, "sleep", "1000")
	if code, r := e.code("rm", id); code == 0 {
		t.Errorf("rm of a running container succeeded\n%v", r)
	}
	e.ok(t, "rm", "-f", "-v", id)
	if code, r := e.code("container", "inspect", id); code == 0 {
		t.Errorf("inspect after rm -f succeeded\n%v", r)
	}
	id = e.create(t, testImage, "true")
	e.ok(t, "rm", id)
	if out := e.ok(t, "ps", "-a", "-q", "--no-trunc", "--filter", "id="+id); out != "" {
		t.Errorf("ps after rm lists %q", out)
	}
	if code, r := e.code("rm", "no-such-container-xyz"); code == 0 {
		t.Errorf("rm of an unknown container succeeded\n%v", r)
	}
}

// TestPs checks ps -a, -q, filters and the JSON format.
func TestPs(t *testing.T) {
	e := needEngine(t)
	label := "suite=ps-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	runName := uniqueName("ps-run")
	running := e.runDetached(t, "--name", runName, "--label", label, testImage, "sleep", "1000")
	exited := e.runDetached(t, "--label", label, testImage, "sh", "-c", "exit 3")
	e.ok(t, "wait", exited)
	created := e.create(t, "--label", label, testImage, "true")

	all := e.ps(t, "-a", "--filter", "label="+label)
	if len(all) != 3 {
		t.Fatalf("ps -a --filter label: %d entries, want 3: %+v", len(all), all)
	}
	byID := map[string]psEntry{}
	for _, p := range all {
		byID[p.ID] = p
	}
	for _, c := range []struct{ id, state string }{{running, "running"}, {exited, "exited"}, {created, "created"}} {
		p, ok := byID[c.id]
		if !ok {
			t.Errorf("ps -a lacks %s", c.id)
			continue
		}
		if p.State != c.state {
			t.Errorf("%s: State %q, want %q", c.id, p.State, c.state)
		}
		if p.Image != testImage {
			t.Errorf("%s: Image %q, want %q", c.id, p.Image, testImage)
		}
		if p.Labels != label {
			t.Errorf("%s: Labels %q, want %q", c.id, p.Labels, label)
		}
	}
	if p := byID[running]; p.Names != runName || !strings.Contains(p.Command, "sleep 1000") {
		t.Errorf("running: Names %q Command %q", p.Names, p.Command)
	}
	if got := e.ps(t, "--filter", "label="+label); len(got) != 1 || got[0].ID != running {
		t.Errorf("ps (running only): %+v", got)
	}
	filters := []struct {
		filter string
		want   []string
	}{
		{"status=exited", []string{exited}},
		{"status=created", []string{created}},
		{"status=running", []string{running}},
		{"exited=3", []string{exited}},
		{"name=" + runName, []string{running}},
		{"id=" + running[:12], []string{running}},
		{"ancestor=" + testImage, []string{running, exited, created}},
	}
	for _, f := range filters {
		out := e.ok(t, "ps", "-a", "-q", "--no-trunc", "--filter", "label="+label, "--filter", f.filter)
		got := nonEmptyLines(out)
		if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(f.want), ",") {
			t.Errorf("ps -a -q --filter %s: %v, want %v", f.filter, got, f.want)
		}
	}
	// -q without --no-trunc prints short IDs.
	out := e.ok(t, "ps", "-a", "-q", "--filter", "label="+label)
	for _, id := range nonEmptyLines(out) {
		if len(id) != 12 {
			t.Errorf("ps -q printed %q, want a 12-character ID", id)
		}
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestTopRenamePause checks top, rename, pause and unpause.
func TestTopRenamePause(t *testing.T) {
	e := needEngine(t)
	name := uniqueName("trp")
	id := e.runDetached(t, "--name", name, testImage, "sleep", "12345")
	if out := e.ok(t, "top", id); !strings.Contains(out, "12345") {
		t.Errorf("top lacks the container's command:\n%s", out)
	}
	if out := e.ok(t, "top", id, "-o", "pid,args"); !strings.Contains(out, "sleep 12345") {
		t.Errorf("top -o pid,args lacks the command:\n%s", out)
	}

	newName := uniqueName("renamed")
	e.ok(t, "rename", name, newName)
	if doc := e.inspect(t, newName); doc.ID != e.inspect(t, id).ID || doc.Name != "/"+newName {
		t.Errorf("after rename: Name %q", doc.Name)
	}
	if code, r := e.code("container", "inspect", name); code == 0 {
		t.Errorf("the old name still resolves\n%v", r)
	}
	other := uniqueName("other")
	e.create(t, "--name", other, testImage, "true")
	if code, r := e.code("rename", newName, other); code == 0 {
		t.Errorf("rename to a name in use succeeded\n%v", r)
	}

	e.ok(t, "pause", id)
	doc := e.inspect(t, id)
	if !doc.State.Paused || doc.State.Status != "paused" {
		t.Errorf("after pause: %+v", doc.State)
	}
	if got := e.ps(t, "--filter", "id="+id); len(got) != 1 || got[0].State != "paused" {
		t.Errorf("ps of a paused container: %+v", got)
	}
	e.ok(t, "unpause", id)
	doc = e.inspect(t, id)
	if doc.State.Paused || doc.State.Status != "running" {
		t.Errorf("after unpause: %+v", doc.State)
	}
	// Like dockerd, exec into a paused container is refused.
	e.ok(t, "pause", id)
	if r := e.docker(nil, "exec", id, "true"); r.code == 0 {
		t.Errorf("exec into a paused container succeeded: %v", r)
	}
	e.ok(t, "unpause", id)
}

// TestUpdate checks docker update of limits and the restart policy.
func TestUpdate(t *testing.T) {
	e := needEngine(t)
	id := e.runDetached(t, testImage, "sleep", "1000")
	e.ok(t, "update", "--restart", "always", id)
	if doc := e.inspect(t, id); doc.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("RestartPolicy after update: %+v", doc.HostConfig.RestartPolicy)
	}
	e.ok(t, "update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "1", "--cpu-shares", "512", "--pids-limit", "100", id)
	doc := e.inspect(t, id)
	checks := []struct {
		what      string
		got, want int64
	}{
		{"Memory", doc.HostConfig.Memory, 128 << 20},
		{"MemorySwap", doc.HostConfig.MemorySwap, 256 << 20},
		{"NanoCPUs", doc.HostConfig.NanoCPUs, 1e9},
		{"CPUShares", doc.HostConfig.CPUShares, 512},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("HostConfig.%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if doc.HostConfig.PidsLimit == nil || *doc.HostConfig.PidsLimit != 100 {
		t.Errorf("HostConfig.PidsLimit = %v, want 100", doc.HostConfig.PidsLimit)
	}
	if code, r := e.code("update", "--memory", "1m", "no-such-container-xyz"); code == 0 {
		t.Errorf("update of an unknown container succeeded\n%v", r)
	}
}

// TestContainerPrune checks that prune removes stopped containers that
// match its filter and nothing else.
func TestContainerPrune(t *testing.T) {
	e := needEngine(t)
	mark := "prune=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var doomed []string
	for i := 0; i < 2; i++ {
		id := e.runDetached(t, "--label", mark, testImage, "true")
		e.ok(t, "wait", id)
		doomed = append(doomed, id)
	}
	doomed = append(doomed, e.create(t, "--label", mark, testImage, "true"))
	running := e.runDetached(t, "--label", mark, testImage, "sleep", "1000")
	keep := e.runDetached(t, testImage, "true")
	e.ok(t, "wait", keep)

	out := e.ok(t, "container", "prune", "-f", "--filter", "label="+mark)
	for _, id := range doomed {
		if !strings.Contains(out, id) {
			t.Errorf("prune output does not name %s:\n%s", id, out)
		}
		if code, _ := e.code("container", "inspect", id); code == 0 {
			t.Errorf("%s survived prune", id)
		}
	}
	for _, id := range []string{running, keep} {
		if code, r := e.code("container", "inspect", id); code != 0 {
			t.Errorf("prune removed %s\n%v", id, r)
		}
	}
}

// TestEvents checks recorded events with since/until and filters, and the
// live stream.
func TestEvents(t *testing.T) {
	e := needEngine(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	id := e.runDetached(t, testImage, "sh", "-c", "exit 2")
	e.ok(t, "wait", id)
	e.ok(t, "rm", id)
	until := time.Now().Add(time.Second).Format(time.RFC3339Nano)

	read := func(args ...string) []events.Message {
		t.Helper()
		out := e.ok(t, append([]string{"events", "--since", since, "--until", until, "--format", "{{json .}}"}, args...)...)
		var list []events.Message
		for _, line := range nonEmptyLines(out) {
			var m events.Message
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("decode event %q: %v", line, err)
			}
			list = append(list, m)
		}
		return list
	}
	actions := func(list []events.Message) string {
		var a []string
		for _, m := range list {
			a = append(a, string(m.Action))
		}
		return strings.Join(a, ",")
	}
	list := read("--filter", "container="+id)
	if got := actions(list); got != "create,start,die,destroy" {
		t.Errorf("events of %s: %s, want create,start,die,destroy", id, got)
	}
	for _, m := range list {
		if m.Type != events.ContainerEventType || m.Actor.ID != id {
			t.Errorf("event %+v: want type container and actor %s", m, id)
		}
		if m.Action == "die" && m.Actor.Attributes["exitCode"] != "2" {
			t.Errorf("die event exitCode %q, want 2", m.Actor.Attributes["exitCode"])
		}
		if m.Actor.Attributes["image"] != testImage {
			t.Errorf("event %s: image attribute %q", m.Action, m.Actor.Attributes["image"])
		}
	}
	if got := actions(read("--filter", "container="+id, "--filter", "event=die")); got != "die" {
		t.Errorf("--filter event=die: %s", got)
	}
	if got := actions(read("--filter", "container="+id, "--filter", "type=image")); got != "" {
		t.Errorf("--filter type=image for a container: %s", got)
	}

	t.Run("live", func(t *testing.T) {
		name := uniqueName("ev")
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		// --since just before the container exists: the stream replays what
		// happened before the subscription took effect, then goes on live.
		from := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
		cmd := exec.CommandContext(ctx, "docker", "events", "--since", from, "--filter", "container="+name, "--format", "{{json .}}")
		cmd.Env = e.env()
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		id := e.runDetached(t, "--name", name, testImage, "true")
		sc := bufio.NewScanner(out)
		var got []string
		for sc.Scan() {
			var m events.Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("decode live event %q: %v", sc.Text(), err)
			}
			if m.Actor.ID != id {
				t.Errorf("live event for %s, filtered on %s", m.Actor.ID, id)
			}
			got = append(got, string(m.Action))
			if m.Action == "die" {
				break
			}
		}
		if strings.Join(got, ",") != "create,start,die" {
			t.Errorf("live events: %v, want create,start,die (scanner: %v)", got, sc.Err())
		}
	})
}

// TestInfoVersion checks /version and /info through the CLI.
func TestInfoVersion(t *testing.T) {
	e := needEngine(t)
	var v struct {
		APIVersion string `json:"ApiVersion"`
		Os         string
		Arch       string
	}
	out := e.ok(t, "version", "--format", "{{json .Server}}")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode version %q: %v", out, err)
	}
	if v.Os != "linux" || v.APIVersion == "" {
		t.Errorf("server version: %+v", v)
	}
	var info struct {
		Containers int
		Images     int
		OSType     string
		Name       string
	}
	out = e.ok(t, "info", "--format", "{{json .}}")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("decode info: %v\n%s", err, out)
	}
	if info.OSType != "linux" || info.Images < 1 {
		t.Errorf("info: %+v", info)
	}
}
