//go:build linux

package engine

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/runtime"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execConfig is one exec instance (docker exec).
type execConfig struct {
	mu          sync.Mutex
	id          string
	c           *ctr
	req         container.ExecCreateRequest
	running     bool
	started     bool
	exitCode    *int
	pid         int
	proc        Process
	detachKeys  []byte
	canRemove   bool
	consoleSize *[2]uint
}

// ExecCreate implements api.ExecBackend.
func (e *Engine) ExecCreate(ctx context.Context, name string, req *container.ExecCreateRequest) (string, error) {
	if req == nil || len(req.Cmd) == 0 {
		return "", invalid("No exec command specified")
	}
	keys, err := parseDetachKeys(req.DetachKeys)
	if err != nil {
		return "", err
	}
	c, err := e.lookup(name)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	switch {
	case !c.m.State.Running || c.h == nil:
		c.mu.Unlock()
		return "", conflict("container %s is not running", c.m.ID)
	case c.m.State.Paused:
		c.mu.Unlock()
		return "", conflict("Container %s is paused, unpause the container before exec", c.m.ID)
	case c.m.State.Restarting:
		c.mu.Unlock()
		return "", conflict("Container %s is restarting, wait until the container is running", c.m.ID)
	}
	id := newID()
	x := &execConfig{id: id, c: c, req: *req, detachKeys: keys, consoleSize: req.ConsoleSize}
	c.execIDs = append(c.execIDs, id)
	c.mu.Unlock()
	e.mu.Lock()
	e.execs[id] = x
	e.mu.Unlock()
	e.emit(c, events.Action(string(events.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": id})
	return id, nil
}

func (e *Engine) lookupExec(id string) (*execConfig, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.execs[id]
	if !ok {
		return nil, notFound("No such exec instance: %s", id)
	}
	return x, nil
}

// execProcess builds the exec's process from the container's.
func (e *Engine) execProcess(x *execConfig) (*specs.Process, error) {
	c := x.c
	c.mu.Lock()
	m := c.m
	c.mu.Unlock()
	spec, _, err := e.buildSpec(&m)
	if err != nil {
		return nil, err
	}
	p := spec.Process
	p.Args = append([]string(nil), x.req.Cmd...)
	p.Terminal = x.req.Tty
	if x.req.Tty {
		p.Env = replaceOrAppendEnv(p.Env, []string{"TERM=xterm"})
	}
	p.Env = replaceOrAppendEnv(p.Env, x.req.Env)
	if x.req.WorkingDir != "" {
		p.Cwd = x.req.WorkingDir
	}
	if x.req.User != "" {
		p.User = userSpec(x.req.User)
	}
	if x.req.Privileged {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		caps := boundingCaps()
		p.Capabilities.Bounding = caps
		p.Capabilities.Effective = caps
		p.Capabilities.Permitted = caps
	}
	if x.consoleSize != nil {
		p.ConsoleSize = &specs.Box{Height: x.consoleSize[0], Width: x.consoleSize[1]}
	}
	return p, nil
}

// ExecStart implements api.ExecBackend.
func (e *Engine) ExecStart(ctx context.Context, id string, opts api.ExecStartOptions) error {
	x, err := e.lookupExec(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return conflict("Error: Exec command %s has already run", id)
	}
	x.started = true
	x.mu.Unlock()
	c := x.c
	c.mu.Lock()
	h := c.h
	paused := c.m.State.Paused
	c.mu.Unlock()
	if h == nil {
		return conflict("container %s is not running", c.m.ID)
	}
	if paused {
		return conflict("Container %s is paused, unpause the container before exec", c.m.ID)
	}
	tty := x.req.Tty || opts.Tty
	if opts.ConsoleSize != nil {
		x.consoleSize = opts.ConsoleSize
	}

	var stdin io.ReadCloser
	var stdout, stderr io.Writer
	if !opts.Detach && opts.GetStreams != nil {
		stdin, stdout, stderr, err = opts.GetStreams(!tty)
		if err != nil {
			return err
		}
		defer stdin.Close()
		if !x.req.AttachStdout {
			stdout = nil
		}
		if !x.req.AttachStderr {
			stderr = nil
		}
		if !x.req.AttachStdin {
			stdin = nil
		}
	}

	p, err := e.execProcess(x)
	if err != nil {
		return e.execFailed(x, err)
	}
	p.Terminal = tty
	ioOpts := runtime.IOOptions{Terminal: tty, OpenStdin: stdin != nil}
	if x.consoleSize != nil {
		ioOpts.ConsoleSize = *x.consoleSize
	}
	proc, err := h.Exec(p, ioOpts)
	if err != nil {
		return e.execFailed(x, err)
	}
	x.mu.Lock()
	x.proc = proc
	x.pid = proc.Pid()
	x.running = true
	x.mu.Unlock()
	e.emit(c, events.Action(string(events.ActionExecStart)+": "+strings.Join(x.req.Cmd, " ")), map[string]string{"execID": id})

	pio := proc.IO()
	r := newRun(pio, tty)
	b := newBroadcaster()
	sub := &subscriber{stdout: stdout, stderr: stderr, done: make(chan struct{})}
	if stdout != nil || stderr != nil {
		b.add(sub)
	}
	r.pump(pio, nil, b)
	detached := make(chan struct{})
	if stdin != nil {
		go func() {
			keys := x.detachKeys
			if !tty {
				keys = nil // detach keys apply to terminals only
			}
			scanner := &detachScanner{keys: keys}
			buf := make([]byte, 32*1024)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					out, detach := scanner.scan(buf[:n])
					if len(out) > 0 {
						_ = r.writeStdin(out)
					}
					if detach {
						close(detached)
						return
					}
				}
				if err != nil {
					r.closeStdin()
					return
				}
			}
		}()
	}
	wait := func() int {
		st := proc.Wait()
		<-r.outputDone
		b.endAll()
		code := st.Code
		x.mu.Lock()
		x.running = false
		x.exitCode = &code
		x.canRemove = true
		x.mu.Unlock()
		e.emit(c, events.ActionExecDie, map[string]string{"execID": id, "exitCode": strconv.Itoa(code)})
		return code
	}
	if opts.Detach || (stdout == nil && stderr == nil && stdin == nil) {
		if opts.Detach {
			go wait()
			return nil
		}
		wait()
		return nil
	}
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
	case <-detached:
	case <-ctx.Done():
		// The client left: the process keeps running, as with dockerd.
	}
	return nil
}

// execFailed records a failed exec start: 127 for a missing command, 126
// for one that cannot be executed, as dockerd reports in exec inspect.
func (e *Engine) execFailed(x *execConfig, err error) error {
	code := 126
	msg := err.Error()
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
		code = 127
	}
	x.mu.Lock()
	x.running = false
	x.exitCode = &code
	x.canRemove = true
	x.mu.Unlock()
	e.emit(x.c, events.ActionExecDie, map[string]string{"execID": x.id, "exitCode": strconv.Itoa(code)})
	return fmt.Errorf("OCI runtime exec failed: %w", err)
}

// ExecInspect implements api.ExecBackend.
func (e *Engine) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	x, err := e.lookupExec(id)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	priv := x.req.Privileged
	resp := &container.ExecInspectResponse{
		ID:       x.id,
		Running:  x.running,
		ExitCode: x.exitCode,
		ProcessConfig: &container.ExecProcessConfig{
			Tty:        x.req.Tty,
			Entrypoint: x.req.Cmd[0],
			Arguments:  append([]string{}, x.req.Cmd[1:]...),
			Privileged: &priv,
			User:       x.req.User,
		},
		OpenStdin:   x.req.AttachStdin,
		OpenStdout:  x.req.AttachStdout,
		OpenStderr:  x.req.AttachStderr,
		CanRemove:   x.canRemove,
		ContainerID: x.c.m.ID,
		DetachKeys:  x.detachKeys,
		Pid:         x.pid,
	}
	return resp, nil
}

// ExecResize implements api.ExecBackend.
func (e *Engine) ExecResize(ctx context.Context, id string, height, width uint) error {
	x, err := e.lookupExec(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	proc := x.proc
	x.mu.Unlock()
	if proc == nil {
		x.mu.Lock()
		x.consoleSize = &[2]uint{height, width}
		x.mu.Unlock()
		return nil
	}
	if err := proc.Resize(height, width); err != nil {
		return fmt.Errorf("resize exec %s: %w", id, err)
	}
	return nil
}

// killExecs ends the execs of a container that stops.
func (x *execConfig) kill() {
	x.mu.Lock()
	p := x.proc
	running := x.running
	x.mu.Unlock()
	if running && p != nil {
		_ = p.Signal(syscall.SIGKILL)
	}
}
