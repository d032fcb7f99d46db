package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// committerBackend adds docker commit to the fake.
type committerBackend struct {
	*fakeBackend
	name string
	opts CommitOptions
}

func (b *committerBackend) ContainerCommit(_ context.Context, name string, opts CommitOptions) (string, error) {
	if name == "missing" {
		return "", notFoundErr{"No such container: missing"}
	}
	b.name, b.opts = name, opts
	return "sha256:new", nil
}

func TestContainerCommit(t *testing.T) {
	b := &committerBackend{fakeBackend: &fakeBackend{}}
	ts := httptest.NewServer(New(Config{Containers: b, Logger: quietLogger()}))
	defer ts.Close()
	tests := []struct {
		query, body string
		status      int
		want        string // the backend's view, when called
	}{
		{"container=c1&repo=team/app&tag=1&comment=hi&author=me&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1", "", 201, `c1 team/app 1 hi me ["CMD [\"sh\"]" "ENV A=1"] true <nil>`},
		{"container=c1&pause=0", `{"Cmd":["true"]}`, 201, `c1     [] false [true]`},
		{"container=c1&pause=1", "", 201, `c1     [] true <nil>`},
		{"container=missing", "", 404, ""},
		{"repo=x", "", 400, ""},
		{"container=c1&tag=1", "", 400, ""},
		{"container=c1", `{"Cmd":`, 400, ""},
	}
	for _, tt := range tests {
		b.name, b.opts = "", CommitOptions{}
		req, _ := http.NewRequest("POST", ts.URL+"/v1.51/commit?"+tt.query, strings.NewReader(tt.body))
		if tt.body != "" {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("commit ?%s: %d %s, want %d", tt.query, resp.StatusCode, body, tt.status)
			continue
		}
		if tt.status != 201 {
			continue
		}
		var cmd any = nil
		if b.opts.Config != nil {
			cmd = b.opts.Config.Cmd
		}
		got := fmt.Sprintf("%s %s %s %s %s %q %v %v", b.name, b.opts.Repo, b.opts.Tag, b.opts.Comment, b.opts.Author, b.opts.Changes, b.opts.Pause, cmd)
		if got != tt.want {
			t.Errorf("commit ?%s: backend saw %s, want %s", tt.query, got, tt.want)
		}
		var id struct{ Id string }
		if json.Unmarshal(body, &id); id.Id != "sha256:new" {
			t.Errorf("commit ?%s: body %s", tt.query, body)
		}
	}
}
