package api

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// fakeBackend implements every backend interface for the router tests.
// Each method calls the matching function field when set and otherwise
// returns errNotFaked, so a test states exactly what it relies on.
type fakeBackend struct {
	mu    sync.Mutex
	calls []string

	info    func(ctx context.Context) (*system.Info, error)
	version func(ctx context.Context) (system.VersionResponse, error)
	events  func(ctx context.Context, since, until time.Time, f Filters) ([]events.Message, <-chan events.Message, func())

	create  func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	start   func(ctx context.Context, name string) error
	stop    func(ctx context.Context, name, signal string, timeout *int) error
	kill    func(ctx context.Context, name, signal string) error
	remove  func(ctx context.Context, name string, opts RemoveOptions) error
	inspect func(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	list    func(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	wait    func(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
	attach  func(ctx context.Context, name string, opts AttachOptions) error
	logs    func(ctx context.Context, name string, opts LogsOptions) (<-chan LogMessage, bool, error)
	top     func(ctx context.Context, name, psArgs string) (container.TopResponse, error)
	rename  func(ctx context.Context, name, newName string) error
	resize  func(ctx context.Context, name string, h, w uint) error
	update  func(ctx context.Context, name string, u *container.UpdateConfig) (container.UpdateResponse, error)
	prune   func(ctx context.Context, f Filters) (*container.PruneReport, error)

	execCreate  func(ctx context.Context, ctr string, req *container.ExecCreateRequest) (string, error)
	execStart   func(ctx context.Context, id string, opts ExecStartOptions) error
	execInspect func(ctx context.Context, id string) (*container.ExecInspectResponse, error)

	imageList    func(ctx context.Context, opts ImageListOptions) ([]image.Summary, error)
	imageInspect func(ctx context.Context, name string) (*image.InspectResponse, error)
	imageTag     func(ctx context.Context, source, repo, tag string) error
	imageDelete  func(ctx context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error)
	imageLoad    func(ctx context.Context, in io.Reader, quiet bool, out io.Writer) error
	imageImport  func(ctx context.Context, in io.Reader, opts ImportOptions, out io.Writer) error
}

var errNotFaked = errors.New("not faked in this test")

var (
	_ SystemBackend    = (*fakeBackend)(nil)
	_ ContainerBackend = (*fakeBackend)(nil)
	_ ExecBackend      = (*fakeBackend)(nil)
	_ ImageBackend     = (*fakeBackend)(nil)
)

func (f *fakeBackend) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeBackend) SystemInfo(ctx context.Context) (*system.Info, error) {
	if f.info == nil {
		return nil, errNotFaked
	}
	return f.info(ctx)
}

func (f *fakeBackend) SystemVersion(ctx context.Context) (system.VersionResponse, error) {
	if f.version == nil {
		return system.VersionResponse{}, errNotFaked
	}
	return f.version(ctx)
}

func (f *fakeBackend) SubscribeEvents(ctx context.Context, since, until time.Time, filters Filters) ([]events.Message, <-chan events.Message, func()) {
	if f.events == nil {
		return nil, nil, func() {}
	}
	return f.events(ctx, since, until, filters)
}

func (f *fakeBackend) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	f.record("create")
	if f.create == nil {
		return container.CreateResponse{}, errNotFaked
	}
	return f.create(ctx, name, req)
}

func (f *fakeBackend) ContainerStart(ctx context.Context, name string) error {
	f.record("start")
	if f.start == nil {
		return errNotFaked
	}
	return f.start(ctx, name)
}

func (f *fakeBackend) ContainerStop(ctx context.Context, name, signal string, timeout *int) error {
	f.record("stop")
	if f.stop == nil {
		return errNotFaked
	}
	return f.stop(ctx, name, signal, timeout)
}

func (f *fakeBackend) ContainerRestart(ctx context.Context, name, signal string, timeout *int) error {
	f.record("restart")
	return f.ContainerStop(ctx, name, signal, timeout)
}

func (f *fakeBackend) ContainerKill(ctx context.Context, name, signal string) error {
	f.record("kill")
	if f.kill == nil {
		return errNotFaked
	}
	return f.kill(ctx, name, signal)
}

func (f *fakeBackend) ContainerRemove(ctx context.Context, name string, opts RemoveOptions) error {
	f.record("remove")
	if f.remove == nil {
		return errNotFaked
	}
	return f.remove(ctx, name, opts)
}

func (f *fakeBackend) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	f.record("inspect")
	if f.inspect == nil {
		return nil, errNotFaked
	}
	return f.inspect(ctx, name, size)
}

func (f *fakeBackend) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	f.record("list")
	if f.list == nil {
		return nil, errNotFaked
	}
	return f.list(ctx, opts)
}

func (f *fakeBackend) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	f.record("wait")
	if f.wait == nil {
		return nil, errNotFaked
	}
	return f.wait(ctx, name, cond)
}

func (f *fakeBackend) ContainerAttach(ctx context.Context, name string, opts AttachOptions) error {
	f.record("attach")
	if f.attach == nil {
		return errNotFaked
	}
	return f.attach(ctx, name, opts)
}

func (f *fakeBackend) ContainerLogs(ctx context.Context, name string, opts LogsOptions) (<-chan LogMessage, bool, error) {
	f.record("logs")
	if f.logs == nil {
		return nil, false, errNotFaked
	}
	return f.logs(ctx, name, opts)
}

func (f *fakeBackend) ContainerTop(ctx context.Context, name, psArgs string) (container.TopResponse, error) {
	if f.top == nil {
		return container.TopResponse{}, errNotFaked
	}
	return f.top(ctx, name, psArgs)
}

func (f *fakeBackend) ContainerRename(ctx context.Context, name, newName string) error {
	if f.rename == nil {
		return errNotFaked
	}
	return f.rename(ctx, name, newName)
}

func (f *fakeBackend) ContainerPause(ctx context.Context, name string) error {
	f.record("pause")
	return errNotFaked
}

func (f *fakeBackend) ContainerUnpause(ctx context.Context, name string) error {
	f.record("unpause")
	return errNotFaked
}

func (f *fakeBackend) ContainerResize(ctx context.Context, name string, h, w uint) error {
	f.record("resize")
	if f.resize == nil {
		return errNotFaked
	}
	return f.resize(ctx, name, h, w)
}

func (f *fakeBackend) ContainerUpdate(ctx context.Context, name string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	if f.update == nil {
		return container.UpdateResponse{}, errNotFaked
	}
	return f.update(ctx, name, u)
}

func (f *fakeBackend) ContainerPrune(ctx context.Context, filters Filters) (*container.PruneReport, error) {
	if f.prune == nil {
		return nil, errNotFaked
	}
	return f.prune(ctx, filters)
}

func (f *fakeBackend) ExecCreate(ctx context.Context, ctr string, req *container.ExecCreateRequest) (string, error) {
	if f.execCreate == nil {
		return "", errNotFaked
	}
	return f.execCreate(ctx, ctr, req)
}

func (f *fakeBackend) ExecStart(ctx context.Context, id string, opts ExecStartOptions) error {
	if f.execStart == nil {
		return errNotFaked
	}
	return f.execStart(ctx, id, opts)
}

func (f *fakeBackend) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	if f.execInspect == nil {
		return nil, errNotFaked
	}
	return f.execInspect(ctx, id)
}

func (f *fakeBackend) ExecResize(ctx context.Context, id string, h, w uint) error {
	return errNotFaked
}

func (f *fakeBackend) ImageList(ctx context.Context, opts ImageListOptions) ([]image.Summary, error) {
	if f.imageList == nil {
		return nil, errNotFaked
	}
	return f.imageList(ctx, opts)
}

func (f *fakeBackend) ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	if f.imageInspect == nil {
		return nil, errNotFaked
	}
	return f.imageInspect(ctx, name)
}

func (f *fakeBackend) ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	return nil, errNotFaked
}

func (f *fakeBackend) ImageTag(ctx context.Context, source, repo, tag string) error {
	if f.imageTag == nil {
		return errNotFaked
	}
	return f.imageTag(ctx, source, repo, tag)
}

func (f *fakeBackend) ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error) {
	if f.imageDelete == nil {
		return nil, errNotFaked
	}
	return f.imageDelete(ctx, name, force, noPrune)
}

func (f *fakeBackend) ImageLoad(ctx context.Context, in io.Reader, quiet bool, out io.Writer) error {
	if f.imageLoad == nil {
		return errNotFaked
	}
	return f.imageLoad(ctx, in, quiet, out)
}

func (f *fakeBackend) ImageImport(ctx context.Context, in io.Reader, opts ImportOptions, out io.Writer) error {
	if f.imageImport == nil {
		return errNotFaked
	}
	return f.imageImport(ctx, in, opts, out)
}

// Typed errors as a backend would return them.
type notFoundErr struct{ msg string }

func (e notFoundErr) Error() string { return e.msg }
func (notFoundErr) NotFound()       {}

type conflictErr struct{ msg string }

func (e conflictErr) Error() string { return e.msg }
func (conflictErr) Conflict()       {}

type notModifiedErr struct{}

func (notModifiedErr) Error() string { return "container already started" }
func (notModifiedErr) NotModified()  {}

type forbiddenErr struct{}

func (forbiddenErr) Error() string { return "forbidden thing" }
func (forbiddenErr) Forbidden()    {}

type badParamErr struct{}

func (badParamErr) Error() string     { return "bad parameter" }
func (badParamErr) InvalidParameter() {}

type unavailErr struct{}

func (unavailErr) Error() string { return "not now" }
func (unavailErr) Unavailable()  {}
