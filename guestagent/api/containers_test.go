package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestContainerCreate(t *testing.T) {
	type got struct {
		name     string
		image    string
		platform *ocispec.Platform
	}
	calls := make(chan got, 1)
	b := &fakeBackend{create: func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
		g := got{name: name, image: req.Config.Image}
		if p, ok := RequestedPlatform(ctx); ok {
			g.platform = &p
		}
		calls <- g
		return container.CreateResponse{ID: "abc123"}, nil
	}}
	ts := startServer(t, b)
	tests := []struct {
		name        string
		query       string
		contentType string
		body        string
		status      int
		message     string
		want        *got
	}{
		{name: "ok", query: "?name=web", contentType: "application/json", body: `{"Image":"busybox"}`, status: 201,
			want: &got{name: "web", image: "busybox"}},
		{name: "no name", contentType: "application/json", body: `{"Image":"busybox","HostConfig":{}}`, status: 201,
			want: &got{image: "busybox"}},
		{name: "leading slash", query: "?name=/web", contentType: "application/json; charset=utf-8", body: `{"Image":"busybox"}`, status: 201,
			want: &got{name: "/web", image: "busybox"}},
		{name: "platform", query: "?platform=linux/x86_64", contentType: "application/json", body: `{"Image":"busybox"}`, status: 201,
			want: &got{image: "busybox", platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}},
		{name: "bad platform", query: "?platform=windows/amd64", contentType: "application/json", body: `{"Image":"busybox"}`, status: 400,
			message: `invalid platform "windows/amd64": operating system "windows" is not supported`},
		{name: "bad name", query: "?name=a%20b", contentType: "application/json", body: `{"Image":"busybox"}`, status: 400,
			message: "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "one char name", query: "?name=a", contentType: "application/json", body: `{"Image":"busybox"}`, status: 400,
			message: "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "name starting with dash", query: "?name=-x", contentType: "application/json", body: `{"Image":"busybox"}`, status: 400,
			message: "Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{name: "empty body", contentType: "application/json", status: 400, message: "invalid JSON: got EOF while reading request body"},
		{name: "truncated JSON", contentType: "application/json", body: `{"Image":`, status: 400, message: "invalid JSON: unexpected EOF"},
		{name: "wrong type", contentType: "application/json", body: `{"Image":5}`, status: 400,
			message: "invalid JSON: json: cannot unmarshal number into Go struct field CreateRequest.Config.Image of type string"},
		{name: "trailing garbage", contentType: "application/json", body: `{"Image":"busybox"} x`, status: 400, message: "unexpected content after JSON"},
		{name: "null", contentType: "application/json", body: `null`, status: 400, message: "config cannot be empty in order to create a container"},
		{name: "not JSON content type", contentType: "text/plain", body: `{"Image":"busybox"}`, status: 400,
			message: "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{name: "bad restart policy", contentType: "application/json", body: `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, status: 400,
			message: "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{name: "autoremove with restart", contentType: "application/json", body: `{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, status: 400,
			message: "can't create 'AutoRemove' container with restart policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.do(t, http.MethodPost, "/v1.50/containers/create"+tt.query, tt.contentType, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.message != "" {
				if m := errorMessage(t, body); m != tt.message {
					t.Errorf("message %q, want %q", m, tt.message)
				}
				return
			}
			var cr container.CreateResponse
			if err := json.Unmarshal([]byte(body), &cr); err != nil || cr.ID != "abc123" || cr.Warnings == nil {
				t.Errorf("body %q: %v", body, err)
			}
			g := <-calls
			if g.name != tt.want.name || g.image != tt.want.image {
				t.Errorf("backend got %+v, want %+v", g, *tt.want)
			}
			if (g.platform == nil) != (tt.want.platform == nil) || (g.platform != nil && (g.platform.OS != tt.want.platform.OS || g.platform.Architecture != tt.want.platform.Architecture)) {
				t.Errorf("platform %v, want %v", g.platform, tt.want.platform)
			}
		})
	}
}

func TestContainerCreateWithClient(t *testing.T) {
	b := &fakeBackend{create: func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
		if name == "taken" {
			return container.CreateResponse{}, conflictErr{`Conflict. The container name "/taken" is already in use`}
		}
		if req.Config.Image != "busybox" || !slices.Equal(req.Config.Cmd, []string{"echo", "hi"}) || !req.HostConfig.AutoRemove {
			return container.CreateResponse{}, badParamErr{}
		}
		return container.CreateResponse{ID: "c1", Warnings: []string{"careful"}}, nil
	}}
	ts := startServer(t, b)
	c := ts.client(t)
	res, err := c.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Name:       "ok",
		Config:     &container.Config{Image: "busybox", Cmd: []string{"echo", "hi"}},
		HostConfig: &container.HostConfig{AutoRemove: true},
	})
	if err != nil || res.ID != "c1" || !slices.Equal(res.Warnings, []string{"careful"}) {
		t.Fatalf("create = %+v, %v", res, err)
	}
	_, err = c.ContainerCreate(context.Background(), client.ContainerCreateOptions{Name: "taken", Config: &container.Config{Image: "busybox"}})
	if !cerrdefs.IsConflict(err) {
		t.Errorf("create of a taken name: %v, want conflict", err)
	}
}

func TestContainerSimpleVerbs(t *testing.T) {
	type call struct {
		verb, name, arg string
		timeout         *int
	}
	calls := make(chan call, 1)
	b := &fakeBackend{
		start: func(_ context.Context, name string) error { calls <- call{verb: "start", name: name}; return nil },
		stop: func(_ context.Context, name, sig string, timeout *int) error {
			calls <- call{verb: "stop", name: name, arg: sig, timeout: timeout}
			return nil
		},
		kill: func(_ context.Context, name, sig string) error {
			calls <- call{verb: "kill", name: name, arg: sig}
			return nil
		},
		remove: func(_ context.Context, name string, o RemoveOptions) error {
			calls <- call{verb: "remove", name: name, arg: strings.Join([]string{boolStr(o.Force), boolStr(o.RemoveVolumes), boolStr(o.RemoveLink)}, ",")}
			return nil
		},
		rename: func(_ context.Context, name, newName string) error {
			calls <- call{verb: "rename", name: name, arg: newName}
			return nil
		},
		resize: func(_ context.Context, name string, h, w uint) error {
			calls <- call{verb: "resize", name: name, arg: fmt.Sprintf("%dx%d", h, w)}
			return nil
		},
	}
	ts := startServer(t, b)
	ten := 10
	tests := []struct {
		method, path string
		body         string
		status       int
		want         *call
		message      string
	}{
		{method: "POST", path: "/containers/c1/start", status: 204, want: &call{verb: "start", name: "c1"}},
		{method: "POST", path: "/containers/c1/start", body: "null", status: 204, want: &call{verb: "start", name: "c1"}},
		{method: "POST", path: "/containers/c1/start", body: `{"Binds":[]}`, status: 400,
			message: "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"},
		{method: "POST", path: "/containers/c1/stop", status: 204, want: &call{verb: "stop", name: "c1"}},
		{method: "POST", path: "/containers/c1/stop?signal=SIGINT&t=10", status: 204, want: &call{verb: "stop", name: "c1", arg: "SIGINT", timeout: &ten}},
		{method: "POST", path: "/containers/c1/stop?t=soon", status: 400, message: `invalid value for "t": strconv.Atoi: parsing "soon": invalid syntax`},
		{method: "POST", path: "/containers/c1/kill?signal=HUP", status: 204, want: &call{verb: "kill", name: "c1", arg: "HUP"}},
		{method: "DELETE", path: "/containers/c1?force=1&v=true&link=0", status: 204, want: &call{verb: "remove", name: "c1", arg: "true,true,false"}},
		{method: "POST", path: "/containers/c1/rename?name=c2", status: 204, want: &call{verb: "rename", name: "c1", arg: "c2"}},
		{method: "POST", path: "/containers/c1/rename?name=b%2Fad", status: 400, message: "Invalid container name (b/ad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{method: "POST", path: "/containers/c1/rename", status: 400, message: "Neither old nor new names may be empty"},
		{method: "POST", path: "/containers/c1/resize?h=24&w=80", status: 200, want: &call{verb: "resize", name: "c1", arg: "24x80"}},
		{method: "POST", path: "/containers/c1/resize?h=24", status: 400, message: `invalid resize width "": strconv.ParseUint: parsing "": invalid syntax`},
		{method: "POST", path: "/containers/c1/wait?condition=eventually", status: 400, message: `invalid condition: "eventually"`},
		{method: "GET", path: "/containers/c1/logs", status: 400, message: "Bad parameters: you must choose at least one stream"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path+tt.body, func(t *testing.T) {
			ct := ""
			if tt.body != "" {
				ct = "application/json"
			}
			resp, body := ts.do(t, tt.method, "/v1.50"+tt.path, ct, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if tt.message != "" {
				if m := errorMessage(t, body); m != tt.message {
					t.Errorf("message %q, want %q", m, tt.message)
				}
				return
			}
			g := <-calls
			if g.verb != tt.want.verb || g.name != tt.want.name || g.arg != tt.want.arg ||
				(g.timeout == nil) != (tt.want.timeout == nil) || (g.timeout != nil && *g.timeout != *tt.want.timeout) {
				t.Errorf("backend got %+v, want %+v", g, *tt.want)
			}
		})
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestContainerListAndInspect(t *testing.T) {
	var gotOpts ListOptions
	b := &fakeBackend{
		list: func(_ context.Context, o ListOptions) ([]container.Summary, error) {
			gotOpts = o
			return []container.Summary{{ID: "c1", Names: []string{"/web"}, Image: "busybox", State: container.StateRunning}}, nil
		},
		inspect: func(_ context.Context, name string, size bool) (*container.InspectResponse, error) {
			if name != "web" {
				return nil, notFoundErr{"No such container: " + name}
			}
			r := &container.InspectResponse{ID: "c1", Name: "/web", State: &container.State{Status: container.StateRunning, Running: true}}
			if size {
				n := int64(42)
				r.SizeRw = &n
			}
			return r, nil
		},
	}
	ts := startServer(t, b)
	c := ts.client(t)
	ctx := context.Background()
	res, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Limit: 3, Size: true,
		Filters: make(client.Filters).Add("status", "running", "exited").Add("name", "web")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || res.Items[0].ID != "c1" {
		t.Errorf("list = %+v", res.Items)
	}
	if !gotOpts.All || !gotOpts.Size || gotOpts.Limit != 3 ||
		!slices.Equal(gotOpts.Filters["status"], []string{"exited", "running"}) || !slices.Equal(gotOpts.Filters["name"], []string{"web"}) {
		t.Errorf("backend options %+v", gotOpts)
	}
	ins, err := c.ContainerInspect(ctx, "web", client.ContainerInspectOptions{Size: true})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.ID != "c1" || ins.Container.SizeRw == nil || *ins.Container.SizeRw != 42 {
		t.Errorf("inspect = %+v", ins.Container)
	}
	_, err = c.ContainerInspect(ctx, "db", client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: db") {
		t.Errorf("inspect of a missing container: %v", err)
	}
	// An empty list is [] not null: the CLI ranges over it.
	b.list = func(context.Context, ListOptions) ([]container.Summary, error) { return nil, nil }
	resp, body := ts.do(t, "GET", "/containers/json", "", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty list: %d %q", resp.StatusCode, body)
	}
	resp, body = ts.do(t, "GET", "/containers/json?filters=%7Bbad", "", "")
	if resp.StatusCode != 400 || !strings.Contains(errorMessage(t, body), "invalid filters parameter") {
		t.Errorf("bad filters: %d %q", resp.StatusCode, body)
	}
}

// echoAttach is an attach backend that greets on both streams, then
// echoes stdin to stdout until stdin ends, and then says goodbye on stderr.
func echoAttach(multiplexed bool, sawEOF chan<- bool) func(context.Context, string, AttachOptions) error {
	return func(ctx context.Context, name string, o AttachOptions) error {
		if name != "c1" {
			return notFoundErr{"No such container: " + name}
		}
		stdin, stdout, stderr, err := o.GetStreams(multiplexed)
		if err != nil {
			return err
		}
		defer stdin.Close()
		io.WriteString(stdout, "out\n")
		io.WriteString(stderr, "err\n")
		_, err = io.Copy(stdout, stdin)
		sawEOF <- err == nil
		io.WriteString(stderr, "bye\n")
		return nil
	}
}

func TestAttachMultiplexedHalfClose(t *testing.T) {
	sawEOF := make(chan bool, 1)
	ts := startServer(t, &fakeBackend{attach: echoAttach(true, sawEOF)})
	c := ts.client(t)
	res, err := c.ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if mt, ok := res.MediaType(); !ok || mt != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("media type %q %v", mt, ok)
	}
	if _, err := io.WriteString(res.Conn, "hello\nworld\n"); err != nil {
		t.Fatal(err)
	}
	if err := res.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, res.Reader); err != nil {
		t.Fatal(err)
	}
	if !<-sawEOF {
		t.Error("the backend's stdin did not end with EOF")
	}
	if stdout.String() != "out\nhello\nworld\n" || stderr.String() != "err\nbye\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

// rawRequest sends a request over a fresh connection and returns the
// connection and the response head; the body stays on the reader.
func rawRequest(t *testing.T, sock, req string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestAttachRawAndPlain200(t *testing.T) {
	tests := []struct {
		name        string
		upgrade     bool
		version     string
		multiplexed bool
		status      int
		contentType string
	}{
		{"tty upgrade", true, "1.50", false, 101, "application/vnd.docker.raw-stream"},
		{"tty no upgrade", false, "1.50", false, 200, "application/vnd.docker.raw-stream"},
		{"multiplexed no upgrade", false, "1.50", true, 200, "application/vnd.docker.multiplexed-stream"},
		{"multiplexed old client", true, "1.41", true, 101, "application/vnd.docker.raw-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawEOF := make(chan bool, 1)
			ts := startServer(t, &fakeBackend{attach: echoAttach(tt.multiplexed, sawEOF)})
			req := "POST /v" + tt.version + "/containers/c1/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n"
			if tt.upgrade {
				req += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
			}
			// Stdin sent right behind the request head must not be lost.
			req += "\r\nearly\n"
			conn, br, resp := rawRequest(t, ts.sock, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			if tt.upgrade && (resp.Header.Get("Upgrade") != "tcp" || resp.Header.Get("Connection") != "Upgrade") {
				t.Errorf("upgrade headers %v", resp.Header)
			}
			if resp.Header.Get("Api-Version") != APIVersion {
				t.Errorf("Api-Version %q", resp.Header.Get("Api-Version"))
			}
			io.WriteString(conn, "late\n")
			conn.(*net.UnixConn).CloseWrite()
			all, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if !<-sawEOF {
				t.Error("stdin did not end with EOF")
			}
			if tt.multiplexed {
				var stdout, stderr bytes.Buffer
				if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(all)); err != nil {
					t.Fatal(err)
				}
				if stdout.String() != "out\nearly\nlate\n" || stderr.String() != "err\nbye\n" {
					t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
				}
			} else if string(all) != "out\nerr\nearly\nlate\nbye\n" {
				t.Errorf("raw stream %q", all)
			}
		})
	}
}

func TestAttachErrorBeforeHijack(t *testing.T) {
	ts := startServer(t, &fakeBackend{attach: echoAttach(true, make(chan bool, 1))})
	// The client reports only the status of a refused upgrade.
	_, err := ts.client(t).ContainerAttach(context.Background(), "nope", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err == nil || !strings.Contains(err.Error(), "received 404") {
		t.Errorf("attach to a missing container: %v", err)
	}
	_, _, resp := rawRequest(t, ts.sock, "POST /v1.50/containers/nope/attach?stream=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 || errorMessage(t, string(body)) != "No such container: nope" {
		t.Errorf("raw attach to a missing container: %d %q", resp.StatusCode, body)
	}
}

// TestAttachBackendClosesStdin checks that a backend that stops reading
// stdin (the container exited) can still write, and the client sees EOF.
func TestAttachBackendClosesStdin(t *testing.T) {
	readDone := make(chan error, 1)
	b := &fakeBackend{attach: func(ctx context.Context, name string, o AttachOptions) error {
		stdin, stdout, _, err := o.GetStreams(false)
		if err != nil {
			return err
		}
		go func() {
			_, err := io.Copy(io.Discard, stdin)
			readDone <- err
		}()
		stdin.Close()
		if err := <-readDone; err != nil {
			return err
		}
		_, err = io.WriteString(stdout, "after close\n")
		return err
	}}
	ts := startServer(t, b)
	res, err := ts.client(t).ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	out, err := io.ReadAll(res.Reader)
	if err != nil || string(out) != "after close\n" {
		t.Errorf("read %q, %v", out, err)
	}
}

func TestWaitHeadersBeforeResult(t *testing.T) {
	result := make(chan container.WaitResponse)
	var gotCond container.WaitCondition
	b := &fakeBackend{wait: func(_ context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
		if name != "c1" {
			return nil, notFoundErr{"No such container: " + name}
		}
		gotCond = cond
		return result, nil
	}}
	ts := startServer(t, b)
	tests := []struct {
		query string
		cond  container.WaitCondition
		resp  container.WaitResponse
	}{
		{"", container.WaitConditionNotRunning, container.WaitResponse{StatusCode: 3}},
		{"?condition=next-exit", container.WaitConditionNextExit, container.WaitResponse{StatusCode: 0}},
		{"?condition=removed", container.WaitConditionRemoved, container.WaitResponse{StatusCode: 137, Error: &container.WaitExitError{Message: "killed"}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.cond), func(t *testing.T) {
			_, br, resp := rawRequest(t, ts.sock, "POST /v1.50/containers/c1/wait"+tt.query+" HTTP/1.1\r\nHost: docker\r\n\r\n")
			// The head has arrived while the backend has not answered:
			// the result channel is unbuffered and only sent to below.
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("head %d %v", resp.StatusCode, resp.Header)
			}
			if gotCond != tt.cond {
				t.Errorf("condition %q, want %q", gotCond, tt.cond)
			}
			result <- tt.resp
			var got container.WaitResponse
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			_ = br
			if got.StatusCode != tt.resp.StatusCode || (got.Error == nil) != (tt.resp.Error == nil) {
				t.Errorf("wait = %+v, want %+v", got, tt.resp)
			}
		})
	}
	// With the client: the result channel yields the status.
	c := ts.client(t)
	wr := c.ContainerWait(context.Background(), "c1", client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	go func() { result <- container.WaitResponse{StatusCode: 7} }()
	select {
	case r := <-wr.Result:
		if r.StatusCode != 7 {
			t.Errorf("status %d", r.StatusCode)
		}
	case err := <-wr.Error:
		t.Fatal(err)
	}
	wr = c.ContainerWait(context.Background(), "zz", client.ContainerWaitOptions{})
	if err := <-wr.Error; !cerrdefs.IsNotFound(err) {
		t.Errorf("wait on a missing container: %v", err)
	}
}

func TestWaitClientLeaves(t *testing.T) {
	backendCtxDone := make(chan struct{})
	b := &fakeBackend{wait: func(ctx context.Context, _ string, _ container.WaitCondition) (<-chan container.WaitResponse, error) {
		go func() { <-ctx.Done(); close(backendCtxDone) }()
		return make(chan container.WaitResponse), nil
	}}
	ts := startServer(t, b)
	conn, _, resp := rawRequest(t, ts.sock, "POST /containers/c1/wait HTTP/1.1\r\nHost: docker\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	conn.Close()
	<-backendCtxDone // the request context ends when the client leaves
}

func TestLogs(t *testing.T) {
	ts0 := time.Date(2024, 5, 6, 7, 8, 9, 123, time.UTC)
	tests := []struct {
		name   string
		query  string
		tty    bool
		stdout string
		stderr string
	}{
		{"both", "stdout=1&stderr=1", false, "a\nc\n", "b\n"},
		{"stdout only", "stdout=1", false, "a\nc\n", ""},
		{"timestamps", "stderr=1&timestamps=1", false, "", "2024-05-06T07:08:09.000000123Z b\n"},
		{"tty", "stdout=1&stderr=1", true, "a\nb\nc\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotOpts LogsOptions
			b := &fakeBackend{logs: func(_ context.Context, name string, o LogsOptions) (<-chan LogMessage, bool, error) {
				gotOpts = o
				ch := make(chan LogMessage, 3)
				ch <- LogMessage{Stream: "stdout", Line: []byte("a\n"), Timestamp: ts0}
				ch <- LogMessage{Stream: "stderr", Line: []byte("b\n"), Timestamp: ts0}
				ch <- LogMessage{Stream: "stdout", Line: []byte("c\n"), Timestamp: ts0}
				close(ch)
				return ch, tt.tty, nil
			}}
			ts := startServer(t, b)
			resp, body := ts.do(t, "GET", "/v1.50/containers/c1/logs?since=1700000000.5&tail=7&"+tt.query, "", "")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			wantCT := "application/vnd.docker.multiplexed-stream"
			if tt.tty {
				wantCT = "application/vnd.docker.raw-stream"
			}
			if ct := resp.Header.Get("Content-Type"); ct != wantCT {
				t.Errorf("Content-Type %q, want %q", ct, wantCT)
			}
			if !gotOpts.Since.Equal(time.Unix(1700000000, 500000000)) || gotOpts.Tail != "7" {
				t.Errorf("options %+v", gotOpts)
			}
			if tt.tty {
				if body != tt.stdout {
					t.Errorf("raw log %q, want %q", body, tt.stdout)
				}
				return
			}
			var stdout, stderr bytes.Buffer
			if _, err := stdcopy.StdCopy(&stdout, &stderr, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tt.stdout, tt.stderr)
			}
		})
	}
}

// TestLogsFollowStreams checks that each message reaches the client
// before the next one exists: the backend sends the second only after the
// client has read the first.
func TestLogsFollowStreams(t *testing.T) {
	ch := make(chan LogMessage)
	b := &fakeBackend{logs: func(context.Context, string, LogsOptions) (<-chan LogMessage, bool, error) { return ch, true, nil }}
	ts := startServer(t, b)
	res, err := ts.client(t).ContainerLogs(context.Background(), "c1", client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	br := bufio.NewReader(res)
	for _, line := range []string{"one\n", "two\n"} {
		ch <- LogMessage{Stream: "stdout", Line: []byte(line)}
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("read %q, %v; want %q", got, err, line)
		}
	}
	ch <- LogMessage{Err: errors.New("disk gone")}
	got, _ := br.ReadString('\n')
	if got != "Error grabbing logs: disk gone\n" {
		t.Errorf("error line %q", got)
	}
	close(ch)
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after close: %q, %v", rest, err)
	}
}

// TestAttachUnreadStdinEndsCleanly checks that a session whose backend
// never read the client's input still ends with a clean EOF for the client
// rather than a connection reset.
func TestAttachUnreadStdinEndsCleanly(t *testing.T) {
	written := make(chan struct{})
	b := &fakeBackend{attach: func(ctx context.Context, _ string, o AttachOptions) error {
		stdin, stdout, _, err := o.GetStreams(false)
		if err != nil {
			return err
		}
		defer stdin.Close()
		<-written
		_, err = io.WriteString(stdout, "output\n")
		return err
	}}
	ts := startServer(t, b)
	res, err := ts.client(t).ContainerAttach(context.Background(), "c1", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if _, err := res.Conn.Write(bytes.Repeat([]byte("unread input\n"), 4096)); err != nil {
		t.Fatal(err)
	}
	close(written)
	out, err := io.ReadAll(res.Reader)
	if err != nil || string(out) != "output\n" {
		t.Errorf("read %q, %v; want the output and a clean EOF", out, err)
	}
}
