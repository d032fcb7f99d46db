package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestExecCreateAndInspect(t *testing.T) {
	var got *container.ExecCreateRequest
	b := &fakeBackend{
		execCreate: func(_ context.Context, ctr string, req *container.ExecCreateRequest) (string, error) {
			if ctr != "c1" {
				return "", notFoundErr{"No such container: " + ctr}
			}
			got = req
			return "e1", nil
		},
		execInspect: func(_ context.Context, id string) (*container.ExecInspectResponse, error) {
			code := 5
			return &container.ExecInspectResponse{ID: id, ContainerID: "c1", ExitCode: &code}, nil
		},
	}
	ts := startServer(t, b)
	c := ts.client(t)
	ctx := context.Background()
	res, err := c.ExecCreate(ctx, "c1", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "exit 5"}, AttachStdout: true, Env: []string{"A=b"}})
	if err != nil || res.ID != "e1" {
		t.Fatalf("exec create = %+v, %v", res, err)
	}
	if !slices.Equal(got.Cmd, []string{"sh", "-c", "exit 5"}) || !got.AttachStdout || !slices.Equal(got.Env, []string{"A=b"}) {
		t.Errorf("backend got %+v", got)
	}
	ins, err := c.ExecInspect(ctx, "e1", client.ExecInspectOptions{})
	if err != nil || ins.ExitCode != 5 || ins.ContainerID != "c1" {
		t.Errorf("exec inspect = %+v, %v", ins, err)
	}
	if _, err := c.ExecCreate(ctx, "zz", client.ExecCreateOptions{Cmd: []string{"true"}}); !cerrdefs.IsNotFound(err) {
		t.Errorf("exec in a missing container: %v", err)
	}
	resp, body := ts.do(t, http.MethodPost, "/v1.50/containers/c1/exec", "application/json", `{"Cmd":[]}`)
	if resp.StatusCode != 400 || errorMessage(t, body) != "No exec command specified" {
		t.Errorf("exec without a command: %d %q", resp.StatusCode, body)
	}
}

func TestExecStart(t *testing.T) {
	var gotOpts ExecStartOptions
	b := &fakeBackend{execStart: func(_ context.Context, id string, o ExecStartOptions) error {
		gotOpts = o
		switch id {
		case "missing":
			return notFoundErr{"No such exec instance: missing"}
		case "detached":
			if !o.Detach || o.GetStreams != nil {
				return errors.New("detached start got streams")
			}
			return nil
		case "fails-late":
			_, stdout, _, err := o.GetStreams(true)
			if err != nil {
				return err
			}
			io.WriteString(stdout, "partial\n")
			return errors.New("exec process vanished")
		}
		stdin, stdout, stderr, err := o.GetStreams(!o.Tty)
		if err != nil {
			return err
		}
		defer stdin.Close()
		in, _ := io.ReadAll(stdin)
		io.WriteString(stdout, strings.ToUpper(string(in)))
		io.WriteString(stderr, "done\n")
		return nil
	}}
	ts := startServer(t, b)
	c := ts.client(t)
	ctx := context.Background()

	if _, err := c.ExecStart(ctx, "detached", client.ExecStartOptions{Detach: true}); err != nil {
		t.Errorf("detached start: %v", err)
	}
	if _, err := c.ExecStart(ctx, "missing", client.ExecStartOptions{Detach: true}); !cerrdefs.IsNotFound(err) {
		t.Errorf("start of a missing exec: %v", err)
	}

	att, err := c.ExecAttach(ctx, "e1", client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(att.Conn, "shout\n")
	att.CloseWrite()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	att.Close()
	if stdout.String() != "SHOUT\n" || stderr.String() != "done\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}

	att, err = c.ExecAttach(ctx, "e2", client.ExecAttachOptions{TTY: true, ConsoleSize: client.ConsoleSize{Height: 24, Width: 80}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(att.Conn, "raw\n")
	att.CloseWrite()
	raw, _ := io.ReadAll(att.Reader)
	att.Close()
	if string(raw) != "RAW\ndone\n" {
		t.Errorf("tty exec stream %q", raw)
	}
	if !gotOpts.Tty || gotOpts.ConsoleSize == nil || *gotOpts.ConsoleSize != [2]uint{24, 80} {
		t.Errorf("tty options %+v", gotOpts)
	}

	// An error after the hijack goes into the stream.
	att, err = c.ExecAttach(ctx, "fails-late", client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	att.Close()
	if stdout.String() != "partial\nexec process vanished\r\n" {
		t.Errorf("late failure stream %q", stdout.String())
	}
}
