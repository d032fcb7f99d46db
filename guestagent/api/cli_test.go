package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
)

// These tests drive the real docker CLI against the server with a fake
// backend, to check that the CLI decodes what the server sends and that
// the attach/wait/start choreography of `docker run` completes. They
// assert on exit codes and on structured output, not on the CLI's text.

// dockerCLI returns the path of the docker CLI or skips the test.
func dockerCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed; these tests check wire compatibility with it")
	}
	return p
}

// runDocker runs the CLI against sock and returns stdout, stderr and the
// exit code.
func runDocker(t *testing.T, sock, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(dockerCLI(t), args...)
	home := t.TempDir()
	cmd.Env = []string{
		"DOCKER_HOST=unix://" + sock,
		"DOCKER_CONFIG=" + home,
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("docker %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

const cliContainerID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"

// runBackend fakes one container for `docker run`: attach echoes stdin
// (when attached) after a greeting, and the exit status is reported to
// wait only once start was called and the output written.
type runBackend struct {
	fakeBackend
	mu       sync.Mutex
	started  chan struct{}
	exited   chan struct{}
	exitCode int64
	waitCond container.WaitCondition
}

func newRunBackend(exitCode int64) *runBackend {
	rb := &runBackend{started: make(chan struct{}), exited: make(chan struct{}), exitCode: exitCode}
	rb.create = func(_ context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
		if req.Config.Image == "missing" {
			return container.CreateResponse{}, notFoundErr{"No such image: missing:latest"}
		}
		return container.CreateResponse{ID: cliContainerID}, nil
	}
	rb.start = func(context.Context, string) error {
		close(rb.started)
		return nil
	}
	rb.attach = func(ctx context.Context, _ string, o AttachOptions) error {
		stdin, stdout, stderr, err := o.GetStreams(true)
		if err != nil {
			return err
		}
		defer stdin.Close()
		<-rb.started
		io.WriteString(stdout, "hello from the container\n")
		io.WriteString(stderr, "a warning\n")
		if o.UseStdin {
			io.Copy(stdout, stdin)
		}
		close(rb.exited)
		return nil
	}
	rb.wait = func(_ context.Context, _ string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
		rb.mu.Lock()
		rb.waitCond = cond
		rb.mu.Unlock()
		ch := make(chan container.WaitResponse, 1)
		go func() {
			<-rb.exited
			ch <- container.WaitResponse{StatusCode: rb.exitCode}
		}()
		return ch, nil
	}
	rb.inspect = func(_ context.Context, name string, _ bool) (*container.InspectResponse, error) {
		return &container.InspectResponse{ID: cliContainerID, Name: "/web", Image: "sha256:abc",
			Config: &container.Config{Image: "busybox"}, HostConfig: &container.HostConfig{},
			State: &container.State{Status: container.StateExited, ExitCode: int(rb.exitCode)}}, nil
	}
	return rb
}

func TestCLIRun(t *testing.T) {
	dockerCLI(t)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		stdout   string
		stderr   string
		waitCond container.WaitCondition
	}{
		{name: "exit status", args: []string{"run", "busybox", "true"}, code: 3,
			stdout: "hello from the container\n", stderr: "a warning\n", waitCond: container.WaitConditionNextExit},
		{name: "stdin until EOF", args: []string{"run", "-i", "busybox", "cat"}, stdin: "line 1\nline 2\n", code: 0,
			stdout: "hello from the container\nline 1\nline 2\n", stderr: "a warning\n", waitCond: container.WaitConditionNextExit},
		{name: "rm waits for removal", args: []string{"run", "--rm", "busybox", "true"}, code: 0,
			stdout: "hello from the container\n", stderr: "a warning\n", waitCond: container.WaitConditionRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := newRunBackend(int64(tt.code))
			ts := startServer(t, &rb.fakeBackend)
			stdout, stderr, code := runDocker(t, ts.sock, tt.stdin, tt.args...)
			if code != tt.code || stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("docker %v: exit %d stdout %q stderr %q; want %d %q %q", tt.args, code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
			rb.mu.Lock()
			if rb.waitCond != tt.waitCond {
				t.Errorf("wait condition %q, want %q", rb.waitCond, tt.waitCond)
			}
			rb.mu.Unlock()
		})
	}
}

func TestCLIRunMissingImage(t *testing.T) {
	rb := newRunBackend(0)
	ts := startServer(t, &rb.fakeBackend)
	_, stderr, code := runDocker(t, ts.sock, "", "run", "missing")
	// 125 is the CLI's code for a daemon error; the message is ours.
	if code != 125 || !strings.Contains(stderr, "Unable to find image 'missing:latest' locally") || !strings.Contains(stderr, "pulling images is not supported by this engine") {
		t.Errorf("exit %d stderr %q", code, stderr)
	}
}

func TestCLIStructuredOutput(t *testing.T) {
	b := &fakeBackend{
		version: func(context.Context) (system.VersionResponse, error) {
			return system.VersionResponse{Version: "0.1.0-test", APIVersion: APIVersion, MinAPIVersion: MinAPIVersion, Os: "linux", Arch: "amd64"}, nil
		},
		list: func(_ context.Context, o ListOptions) ([]container.Summary, error) {
			if !o.All {
				return nil, nil
			}
			return []container.Summary{
				{ID: cliContainerID, Names: []string{"/web"}, Image: "busybox", Command: "sh", State: container.StateExited, Status: "Exited (3)"},
			}, nil
		},
	}
	b.inspect = newRunBackend(3).inspect
	ts := startServer(t, b)

	out, stderr, code := runDocker(t, ts.sock, "", "version", "--format", "{{json .Server}}")
	var v struct{ Version, APIVersion, Os string }
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version != "0.1.0-test" || v.APIVersion != APIVersion {
		t.Errorf("docker version: exit %d out %q err %q", code, out, stderr)
	}
	out, stderr, code = runDocker(t, ts.sock, "", "version", "--format", "{{json .Client.APIVersion}}")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("docker version (client): exit %d out %q err %q", code, out, stderr)
	}

	out, stderr, code = runDocker(t, ts.sock, "", "ps", "--format", "{{json .}}")
	if code != 0 || out != "" {
		t.Errorf("docker ps: exit %d out %q err %q", code, out, stderr)
	}
	out, stderr, code = runDocker(t, ts.sock, "", "ps", "-a", "--no-trunc", "--format", "{{json .}}")
	var rows []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("docker ps row %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if code != 0 || len(rows) != 1 || rows[0]["ID"] != cliContainerID || rows[0]["Names"] != "web" || rows[0]["State"] != "exited" {
		t.Errorf("docker ps -a: exit %d rows %v err %q", code, rows, stderr)
	}

	out, stderr, code = runDocker(t, ts.sock, "", "inspect", "--type", "container", "--format", "{{json .}}", "web")
	var ins container.InspectResponse
	if code != 0 || json.Unmarshal([]byte(out), &ins) != nil || ins.ID != cliContainerID || ins.State.ExitCode != 3 {
		t.Errorf("docker inspect: exit %d out %q err %q", code, out, stderr)
	}
}

func TestCLIExecAndLogs(t *testing.T) {
	dockerCLI(t)
	b := &fakeBackend{
		execCreate: func(_ context.Context, ctr string, req *container.ExecCreateRequest) (string, error) {
			if ctr != "web" {
				return "", notFoundErr{"No such container: " + ctr}
			}
			return "e1", nil
		},
		execStart: func(_ context.Context, id string, o ExecStartOptions) error {
			stdin, stdout, stderr, err := o.GetStreams(!o.Tty)
			if err != nil {
				return err
			}
			defer stdin.Close()
			in, err := io.ReadAll(stdin)
			if err != nil {
				return err
			}
			io.WriteString(stdout, strings.ToUpper(string(in)))
			io.WriteString(stderr, "exec done\n")
			return nil
		},
		execInspect: func(_ context.Context, id string) (*container.ExecInspectResponse, error) {
			code := 4
			return &container.ExecInspectResponse{ID: id, ContainerID: cliContainerID, ExitCode: &code}, nil
		},
		logs: func(_ context.Context, name string, o LogsOptions) (<-chan LogMessage, bool, error) {
			ch := make(chan LogMessage, 2)
			ch <- LogMessage{Stream: "stdout", Line: []byte("out line\n")}
			ch <- LogMessage{Stream: "stderr", Line: []byte("err line\n")}
			close(ch)
			return ch, false, nil
		},
	}
	b.inspect = newRunBackend(0).inspect
	ts := startServer(t, b)

	stdout, stderr, code := runDocker(t, ts.sock, "quiet please\n", "exec", "-i", "web", "cat")
	if code != 4 || stdout != "QUIET PLEASE\n" || stderr != "exec done\n" {
		t.Errorf("docker exec: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	_, _, code = runDocker(t, ts.sock, "", "exec", "db", "true")
	if code == 0 {
		t.Error("docker exec in a missing container succeeded")
	}
	stdout, stderr, code = runDocker(t, ts.sock, "", "logs", "web")
	if code != 0 || stdout != "out line\n" || stderr != "err line\n" {
		t.Errorf("docker logs: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}
