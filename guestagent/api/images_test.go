package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
)

func TestImageRoutesWithSlashes(t *testing.T) {
	var got []string
	b := &fakeBackend{
		imageInspect: func(_ context.Context, name string) (*image.InspectResponse, error) {
			got = append(got, "inspect "+name)
			if name == "missing:latest" {
				return nil, notFoundErr{"No such image: missing:latest"}
			}
			return &image.InspectResponse{ID: "sha256:abc", RepoTags: []string{name}}, nil
		},
		imageTag: func(_ context.Context, source, repo, tag string) error {
			got = append(got, "tag "+source+" "+repo+" "+tag)
			return nil
		},
		imageDelete: func(_ context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error) {
			got = append(got, fmt.Sprintf("delete %s %v %v", name, force, noPrune))
			return []image.DeleteResponse{{Untagged: name}, {Deleted: "sha256:abc"}}, nil
		},
		imageList: func(_ context.Context, o ImageListOptions) ([]image.Summary, error) {
			got = append(got, fmt.Sprintf("list %v %v", o.All, o.Filters["reference"]))
			return []image.Summary{{ID: "sha256:abc", RepoTags: []string{"busybox:latest"}}}, nil
		},
	}
	ts := startServer(t, b)
	tests := []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/v1.50/images/json?all=1&filters=%7B%22reference%22%3A%5B%22busy%2A%22%5D%7D", 200, "list true [busy*]"},
		{"GET", "/v1.50/images/busybox:latest/json", 200, "inspect busybox:latest"},
		{"GET", "/v1.50/images/example.org:5000/team/app:1.0/json", 200, "inspect example.org:5000/team/app:1.0"},
		{"GET", "/images/library/busybox@sha256:0123/json", 200, "inspect library/busybox@sha256:0123"},
		{"GET", "/v1.50/images/json/json", 200, "inspect json"},
		{"POST", "/v1.50/images/team/app:1.0/tag?repo=other/app&tag=2", 201, "tag team/app:1.0 other/app 2"},
		{"DELETE", "/v1.50/images/team/app:1.0?force=1", 200, "delete team/app:1.0 true false"},
		{"DELETE", "/v1.50/images/sha256:abc?noprune=true", 200, "delete sha256:abc false true"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			got = nil
			resp, body := ts.do(t, tt.method, tt.path, "", "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tt.status, body)
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("backend calls %q, want %q", got, tt.want)
			}
		})
	}
	c := ts.client(t)
	_, err := c.ImageInspect(context.Background(), "missing:latest")
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: missing:latest") {
		t.Errorf("inspect of a missing image: %v", err)
	}
	resp, body := ts.do(t, "POST", "/images/busybox/tag", "", "")
	if resp.StatusCode != 400 || errorMessage(t, body) != "repository name must have at least one component" {
		t.Errorf("tag without repo: %d %q", resp.StatusCode, body)
	}
}

func TestPullIsNotImplemented(t *testing.T) {
	ts := startServer(t, &fakeBackend{})
	tests := []struct{ query, message string }{
		{"fromImage=busybox&tag=latest", "pulling images is not supported by this engine"},
		{"fromSrc=http://example.invalid/x.tar", "importing from a URL is not supported yet: send the archive in the request body (fromSrc=-)"},
	}
	for _, tt := range tests {
		resp, body := ts.do(t, "POST", "/v1.50/images/create?"+tt.query, "", "")
		if resp.StatusCode != http.StatusNotImplemented || errorMessage(t, body) != tt.message {
			t.Errorf("%s: %d %q", tt.query, resp.StatusCode, body)
		}
	}
	resp, body := ts.do(t, "POST", "/v1.50/images/create", "", "")
	if resp.StatusCode != 400 {
		t.Errorf("create without a source: %d %q", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1.50/images/busybox/get", "/v1.50/containers/c1/stats"} {
		resp, body := ts.do(t, "GET", path, "", "")
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(errorMessage(t, body), "not supported yet") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}

// jsonMessages decodes a progress stream.
func jsonMessages(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(r)
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("progress stream: %v", err)
		}
		out = append(out, m)
	}
}

func TestImageLoadAndImport(t *testing.T) {
	var gotImport ImportOptions
	b := &fakeBackend{
		imageLoad: func(_ context.Context, in io.Reader, quiet bool, out io.Writer) error {
			data, _ := io.ReadAll(in)
			switch string(data) {
			case "good":
				fmt.Fprintf(out, "{\"stream\":\"Loaded image: busybox:latest\\n\"}\n")
				return nil
			case "bad-early":
				return badParamErr{}
			default:
				fmt.Fprintf(out, "{\"stream\":\"reading\\n\"}\n")
				return errors.New("unexpected EOF in layer 2")
			}
		},
		imageImport: func(_ context.Context, in io.Reader, o ImportOptions, out io.Writer) error {
			gotImport = o
			data, _ := io.ReadAll(in)
			fmt.Fprintf(out, "{\"status\":\"sha256:%x\"}\n", len(data))
			return nil
		},
	}
	ts := startServer(t, b)

	resp, body := ts.do(t, "POST", "/v1.50/images/load?quiet=1", "application/x-tar", "good")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("load: %d %v", resp.StatusCode, resp.Header)
	}
	if msgs := jsonMessages(t, strings.NewReader(body)); len(msgs) != 1 || msgs[0]["stream"] != "Loaded image: busybox:latest\n" {
		t.Errorf("load stream %q", body)
	}

	resp, body = ts.do(t, "POST", "/v1.50/images/load", "application/x-tar", "bad-early")
	if resp.StatusCode != 400 || errorMessage(t, body) != "bad parameter" {
		t.Errorf("early load failure: %d %q", resp.StatusCode, body)
	}

	resp, body = ts.do(t, "POST", "/v1.50/images/load", "application/x-tar", "truncated")
	msgs := jsonMessages(t, strings.NewReader(body))
	if resp.StatusCode != 200 || len(msgs) != 2 || msgs[1]["error"] != "unexpected EOF in layer 2" ||
		msgs[1]["errorDetail"].(map[string]any)["message"] != "unexpected EOF in layer 2" {
		t.Errorf("late load failure: %d %q", resp.StatusCode, body)
	}

	// The client surfaces the in-stream error.
	c := ts.client(t)
	lr, err := c.ImageLoad(context.Background(), strings.NewReader("truncated"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(lr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	lr.Close()
	if len(lines) != 2 || !strings.Contains(lines[1], "errorDetail") {
		t.Errorf("client load stream %q", lines)
	}

	resp, body = ts.do(t, "POST", "/v1.50/images/create?fromSrc=-&repo=team/app&tag=v1&message=hi&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3Db", "application/x-tar", "12345")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"status":"sha256:5"}` {
		t.Errorf("import: %d %q", resp.StatusCode, body)
	}
	if gotImport.Repo != "team/app" || gotImport.Tag != "v1" || gotImport.Message != "hi" ||
		!slices.Equal(gotImport.Changes, []string{`CMD ["sh"]`, "ENV A=b"}) {
		t.Errorf("import options %+v", gotImport)
	}
	resp, _ = ts.do(t, "POST", "/v1.50/images/create?fromSrc=-", "application/x-tar", "1")
	if resp.StatusCode != 200 || gotImport.Repo != "" || gotImport.Message != "Imported from -" {
		t.Errorf("untagged import: %d %+v", resp.StatusCode, gotImport)
	}
}
