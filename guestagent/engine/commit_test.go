//go:build linux

package engine

import (
	"slices"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/moby/moby/api/types/container"
)

// logsOf is the stdout the container logged.
func logsOf(t *testing.T, e *Engine, id string) string {
	t.Helper()
	msgs, _, err := e.ContainerLogs(bg, id, api.LogsOptions{ShowStdout: true, Tail: "all"})
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for m := range msgs {
		out += string(m.Line)
	}
	return out
}

func TestRealCommit(t *testing.T) {
	e := realEngine(t, "")
	// A container that has exited.
	src := create(t, e, "src", container.Config{Cmd: []string{"sh", "-c", "echo data > /made"}, Env: []string{"FROM_CTR=1"}, Labels: map[string]string{"ctr": "yes"}}, nil)
	if err := e.ContainerStart(bg, src); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, src, "")
	// A running one, paused while its layer is read when it can be.
	running := create(t, e, "running", container.Config{Cmd: []string{"sh", "-c", "echo live > /live; exec sleep 1000"}}, nil)
	if err := e.ContainerStart(bg, running); err != nil {
		t.Fatal(err)
	}
	canPause := e.ContainerPause(bg, running) == nil
	if canPause {
		if err := e.ContainerUnpause(bg, running); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		ctr     string
		opts    api.CommitOptions
		runCmd  []string // command of the container made from the image; the image's when nil
		wantOut string
		check   func(t *testing.T, env []string, labels map[string]string, author string)
	}{
		{
			name:    "changes and author",
			ctr:     "src",
			opts:    api.CommitOptions{Repo: "committed", Tag: "1", Author: "me", Comment: "first", Changes: []string{`CMD ["cat", "/made"]`, "ENV ADDED=2"}},
			wantOut: "data\n",
			check: func(t *testing.T, env []string, labels map[string]string, author string) {
				if !slices.Contains(env, "ADDED=2") || !slices.Contains(env, "FROM_CTR=1") || labels["ctr"] != "yes" || author != "me" {
					t.Errorf("image env %q labels %v author %q", env, labels, author)
				}
			},
		},
		{
			name:    "body config overrides the container's",
			ctr:     "src",
			opts:    api.CommitOptions{Repo: "committed", Tag: "2", Config: &container.Config{Cmd: []string{"sh", "-c", "cat /made; echo $FROM_CTR"}}},
			wantOut: "data\n1\n",
		},
		{
			name:    "running container",
			ctr:     "running",
			opts:    api.CommitOptions{Repo: "committed", Tag: "3", Pause: canPause},
			runCmd:  []string{"cat", "/live"},
			wantOut: "live\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := e.ContainerCommit(bg, tt.ctr, tt.opts)
			if err != nil {
				t.Fatalf("commit: %v", err)
			}
			ref := tt.opts.Repo + ":" + tt.opts.Tag
			img, err := e.cfg.Images.Resolve(ref)
			if err != nil || string(img.ID) != id {
				t.Fatalf("resolve %s: %v %v, want %s", ref, img, err, id)
			}
			if tt.check != nil {
				tt.check(t, img.Config.Config.Env, img.Config.Config.Labels, img.Config.Author)
			}
			run := create(t, e, "", container.Config{Image: ref, Cmd: tt.runCmd}, nil)
			if err := e.ContainerStart(bg, run); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, e, run, ""); code != 0 {
				t.Errorf("container of %s exited %d", ref, code)
			}
			if out := logsOf(t, e, run); out != tt.wantOut {
				t.Errorf("container of %s printed %q, want %q", ref, out, tt.wantOut)
			}
		})
	}
	ins, err := e.ContainerInspect(bg, running, false)
	if err != nil || !ins.State.Running || ins.State.Paused {
		t.Errorf("the committed running container afterwards: %+v %v", ins.State, err)
	}
	if err := e.ContainerKill(bg, running, "KILL"); err != nil {
		t.Error(err)
	}
	if _, err := e.ContainerCommit(bg, "nosuch", api.CommitOptions{}); !isNotFound(err) {
		t.Errorf("commit of a missing container: %v", err)
	}
}
