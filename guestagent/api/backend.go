package api

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// This file is the contract between the HTTP routers of this package and the
// engine behind them. Each router consumes one small interface; the engine
// (guestagent/engine) and the image service (guestagent/image) implement them.
//
// Errors returned by a backend are mapped to HTTP status codes by behaviour,
// not by type: an error (or anything it wraps) with a method
//
//	NotFound()         -> 404
//	InvalidParameter() -> 400
//	Conflict()         -> 409
//	NotModified()      -> 304
//	Forbidden()        -> 403
//	NotImplemented()   -> 501
//	Unavailable()      -> 503
//
// and anything else -> 500. The message body is {"message": err.Error()}, the
// shape dockerd uses, so the docker CLI prints "Error response from daemon: ...".

// Filters is a decoded "filters" query parameter: key -> accepted values.
// The router accepts both the map[string]map[string]bool and the legacy
// map[string][]string encodings and hands backends this form.
type Filters map[string][]string

// SystemBackend serves /_ping, /version, /info and /events.
type SystemBackend interface {
	SystemInfo(ctx context.Context) (*system.Info, error)
	SystemVersion(ctx context.Context) (system.VersionResponse, error)
	// SubscribeEvents returns the recorded events within [since, until] that
	// match filters, and, when until is zero, a channel of live events that
	// stays open until cancel is called or ctx ends.
	SubscribeEvents(ctx context.Context, since, until time.Time, filters Filters) (past []events.Message, live <-chan events.Message, cancel func())
}

// ListOptions are the query parameters of GET /containers/json.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters Filters
}

// RemoveOptions are the query parameters of DELETE /containers/{id}.
type RemoveOptions struct {
	Force         bool
	RemoveVolumes bool
	RemoveLink    bool
}

// StreamsFunc is called by a backend once it knows whether the streams are
// multiplexed (no TTY: stdcopy framing) or raw (TTY). The router then hijacks
// the connection, writes the upgrade/200 response, and returns the client's
// stdin and writers for stdout and stderr (which frame with stdcopy when
// multiplexed). The backend must close stdin when it is done.
type StreamsFunc func(multiplexed bool) (stdin io.ReadCloser, stdout, stderr io.Writer, err error)

// AttachOptions are the query parameters of POST /containers/{id}/attach.
type AttachOptions struct {
	GetStreams StreamsFunc
	UseStdin   bool
	UseStdout  bool
	UseStderr  bool
	Logs       bool // replay the log before streaming
	Stream     bool // stream live output until the container exits or the client leaves
	DetachKeys string
}

// LogsOptions are the query parameters of GET /containers/{id}/logs.
type LogsOptions struct {
	ShowStdout bool
	ShowStderr bool
	Since      time.Time
	Until      time.Time
	Timestamps bool
	Follow     bool
	Tail       string // "all" or a number
	Details    bool
}

// LogMessage is one line of a container's log.
type LogMessage struct {
	Stream    string // "stdout" or "stderr"
	Line      []byte // including its trailing newline, if it had one
	Timestamp time.Time
	Err       error // set on the last message when reading failed
}

// ContainerBackend serves /containers/*.
type ContainerBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, name string) error
	ContainerStop(ctx context.Context, name string, signal string, timeout *int) error
	ContainerRestart(ctx context.Context, name string, signal string, timeout *int) error
	ContainerKill(ctx context.Context, name string, signal string) error
	ContainerRemove(ctx context.Context, name string, opts RemoveOptions) error
	ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	// ContainerWait returns at once with an error (no such container, bad
	// condition) or a channel that yields exactly one response when the
	// condition is met ("not-running", "next-exit", "removed").
	ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
	// ContainerAttach blocks until the attach session ends.
	ContainerAttach(ctx context.Context, name string, opts AttachOptions) error
	// ContainerLogs returns a channel closed after the last message; tty
	// tells the router whether to frame with stdcopy.
	ContainerLogs(ctx context.Context, name string, opts LogsOptions) (msgs <-chan LogMessage, tty bool, err error)
	ContainerTop(ctx context.Context, name string, psArgs string) (container.TopResponse, error)
	ContainerRename(ctx context.Context, name, newName string) error
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	ContainerResize(ctx context.Context, name string, height, width uint) error
	ContainerUpdate(ctx context.Context, name string, update *container.UpdateConfig) (container.UpdateResponse, error)
	ContainerPrune(ctx context.Context, filters Filters) (*container.PruneReport, error)
}

// ExecStartOptions carry POST /exec/{id}/start.
type ExecStartOptions struct {
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint // height, width
	GetStreams  StreamsFunc
}

// ExecBackend serves /containers/{id}/exec and /exec/*.
type ExecBackend interface {
	ExecCreate(ctx context.Context, container string, req *container.ExecCreateRequest) (id string, err error)
	// ExecStart blocks until the process exits (or returns at once when
	// Detach is set).
	ExecStart(ctx context.Context, id string, opts ExecStartOptions) error
	ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, id string, height, width uint) error
}

// ImageListOptions are the query parameters of GET /images/json.
type ImageListOptions struct {
	All        bool
	Filters    Filters
	SharedSize bool
	Manifests  bool
}

// ImportOptions are the query parameters of POST /images/create?fromSrc=.
type ImportOptions struct {
	Repo     string // may be empty: untagged
	Tag      string
	Message  string
	Changes  []string // Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL
	Platform string
}

// ImageBackend serves /images/*. Progress is written to out as the
// JSON-message stream (one JSON object per line) the CLI renders.
type ImageBackend interface {
	ImageList(ctx context.Context, opts ImageListOptions) ([]image.Summary, error)
	ImageInspect(ctx context.Context, name string) (*image.InspectResponse, error)
	ImageHistory(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
	ImageTag(ctx context.Context, source, repo, tag string) error
	ImageDelete(ctx context.Context, name string, force, noPrune bool) ([]image.DeleteResponse, error)
	ImageLoad(ctx context.Context, in io.Reader, quiet bool, out io.Writer) error
	ImageImport(ctx context.Context, in io.Reader, opts ImportOptions, out io.Writer) error
}
