//go:build linux

package main

import (
	"testing"
)

// TestEngineRestart stops the engine with SIGTERM in the middle of a
// container lifecycle and starts it again on the same roots: containers
// persist, exited ones start again, logs survive.
func TestEngineRestart(t *testing.T) {
	e := ownEngine(t, "restart")

	exited := e.ok(t, "run", "-d", "--name", "exited", testImage, "echo", "first run")
	e.ok(t, "wait", exited)
	running := e.ok(t, "run", "-d", "--name", "running", testImage, "sleep", "100000")
	created := e.ok(t, "create", "--name", "created", "--label", "keep=yes", testImage, "echo", "created ran")
	before := map[string]psEntry{}
	for _, p := range e.ps(t, "-a") {
		before[p.ID] = p
	}

	if err := e.stop(); err != nil {
		t.Fatalf("stop engine: %v", err)
	}
	if err := e.start(); err != nil {
		t.Fatalf("start engine again: %v", err)
	}

	after := map[string]psEntry{}
	for _, p := range e.ps(t, "-a") {
		after[p.ID] = p
	}
	for _, id := range []string{exited, running, created} {
		b, a := before[id], after[id]
		if a.ID == "" {
			t.Errorf("%s (%s) is gone after the restart", id, b.Names)
			continue
		}
		if a.Names != b.Names || a.Image != b.Image || a.Command != b.Command || a.Labels != b.Labels {
			t.Errorf("%s changed across the restart: before %+v, after %+v", id, b, a)
		}
	}
	if doc := e.inspect(t, "created"); doc.State.Status != "created" || doc.Config.Labels["keep"] != "yes" {
		t.Errorf("created container after restart: State %+v Labels %v", doc.State, doc.Config.Labels)
	}
	if doc := e.inspect(t, "exited"); doc.State.Status != "exited" || doc.State.ExitCode != 0 {
		t.Errorf("exited container after restart: %+v", doc.State)
	}
	// The image store survived too.
	if doc := e.imageInspect(t, testImage); doc.ID != img.ID {
		t.Errorf("image after restart: %s", doc.ID)
	}

	if got := e.ok(t, "start", "-a", "exited"); got != "first run" {
		t.Errorf("start -a of the exited container: %q", got)
	}
	if got := e.ok(t, "logs", "exited"); got != "first run\nfirst run" {
		t.Errorf("logs across the restart: %q", got)
	}
	if got := e.ok(t, "start", "-a", "created"); got != "created ran" {
		t.Errorf("start -a of the created container: %q", got)
	}
	// The container that was running is stopped (or still running, with
	// live restore); either way it can be started and exec'd into.
	e.ok(t, "start", "running")
	if doc := e.inspect(t, "running"); !doc.State.Running {
		t.Errorf("running container after start: %+v", doc.State)
	}
	if got := e.ok(t, "exec", "running", "echo", "alive"); got != "alive" {
		t.Errorf("exec after restart: %q", got)
	}
	e.ok(t, "rm", "-f", "running")
	// New containers work on the restarted engine.
	if got := e.ok(t, "run", "--rm", testImage, "echo", "new"); got != "new" {
		t.Errorf("run after restart: %q", got)
	}
}
