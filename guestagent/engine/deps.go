//go:build linux

package engine

import (
	"syscall"

	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/runtime"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Images is what the engine needs of the image store (guestagent/image).
type Images interface {
	Resolve(ref string) (*image.Image, error)
	PrepareRootfs(key string, imageID digest.Digest) ([]image.Mount, error)
	RootfsMounts(key string) ([]image.Mount, error)
	RootfsSize(key string) (rw, total int64, err error)
	RemoveRootfs(key string) error
}

// Runtime creates containers (guestagent/runtime, through WrapRuntime).
type Runtime interface {
	Create(id string, spec *specs.Spec, opts runtime.CreateOptions) (Handle, error)
}

// Handle is one created container of the runtime.
type Handle interface {
	Start() error
	Pid() int
	IO() *runtime.ProcessIO
	Wait() runtime.ExitStatus
	Signal(sig syscall.Signal) error
	Pause() error
	Resume() error
	Update(res *specs.LinuxResources) error
	Processes() ([]int, error)
	Resize(height, width uint) error
	Exec(p *specs.Process, io runtime.IOOptions) (Process, error)
	Delete() error
}

// Process is one exec'd process.
type Process interface {
	Pid() int
	IO() *runtime.ProcessIO
	Wait() runtime.ExitStatus
	Signal(sig syscall.Signal) error
	Resize(height, width uint) error
}

// Limits says which resource limits the cgroup manager can enforce on this
// host; the engine warns (as dockerd does) about the ones it cannot.
type Limits struct {
	Memory    bool
	Swap      bool
	CPUQuota  bool // --cpus (CFS quota and period)
	CPUShares bool
	CPUSet    bool
	Pids      bool
}

// WrapRuntime adapts *runtime.Runtime to Runtime.
func WrapRuntime(r *runtime.Runtime) Runtime { return runtimeAdapter{r} }

type runtimeAdapter struct{ r *runtime.Runtime }

func (a runtimeAdapter) Create(id string, spec *specs.Spec, opts runtime.CreateOptions) (Handle, error) {
	c, err := a.r.Create(id, spec, opts)
	if err != nil {
		return nil, err
	}
	return handleAdapter{c}, nil
}

type handleAdapter struct{ *runtime.Container }

func (h handleAdapter) Exec(p *specs.Process, io runtime.IOOptions) (Process, error) {
	proc, err := h.Container.Exec(p, io)
	if err != nil {
		return nil, err
	}
	return proc, nil
}

// toRuntimeMounts converts the image store's mounts to the runtime's.
func toRuntimeMounts(ms []image.Mount) []runtime.RootfsMount {
	out := make([]runtime.RootfsMount, 0, len(ms))
	for _, m := range ms {
		out = append(out, runtime.RootfsMount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return out
}
