//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/cgroups"
	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/guestagent/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The image store serves docker save and docker image prune, the engine
// docker commit.
var (
	_ api.ImageSaver  = (*image.Store)(nil)
	_ api.ImagePruner = (*image.Store)(nil)
	_ api.Committer   = (*ctrengine.Engine)(nil)
)

// wiring holds the parts the engine is built from.
type wiring struct {
	images       ctrengine.Images
	imageBackend api.ImageBackend
	registry     api.RegistryBackend
	runtime      ctrengine.Runtime
	defaultSpec  func() *specs.Spec
	limits       ctrengine.Limits
	countImages  func() int
	release      func(id string) error
	setUsage     func(*ctrengine.Engine)
	close        func()
}

// wire opens the image store under dataRoot and the runtime (with the
// cgroup manager when this host has a usable cgroup2 hierarchy).
func wire(dataRoot, execRoot string, reg *registry.Client, log *slog.Logger) (*wiring, error) {
	w := &wiring{close: func() {}, setUsage: func(*ctrengine.Engine) {}}
	var cg runtime.CgroupManager
	mgr, err := cgroups.New("berth")
	if err != nil {
		log.Warn("running without cgroups", "err", err)
	} else {
		caps := mgr.Capabilities()
		w.limits = ctrengine.Limits{Memory: caps.Memory, Swap: caps.Swap, CPUQuota: caps.CPU, CPUShares: caps.CPUShares, CPUSet: caps.CPUSet, Pids: caps.Pids}
		cg = mgr
		w.release = mgr.Delete
	}
	rt, err := runtime.New(runtime.Config{StateDir: filepath.Join(execRoot, "runtime"), Cgroups: cg})
	if err != nil {
		return nil, fmt.Errorf("open runtime: %w", err)
	}
	w.runtime = ctrengine.WrapRuntime(rt)
	w.defaultSpec = runtime.DefaultSpec

	store, err := image.OpenWith(filepath.Join(dataRoot, "image"), image.Options{Logger: log, Registry: reg})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	w.images = store
	w.imageBackend = store
	w.registry = store
	w.countImages = func() int {
		list, err := store.ImageList(context.Background(), api.ImageListOptions{})
		if err != nil {
			return 0
		}
		return len(list)
	}
	w.setUsage = func(e *ctrengine.Engine) {
		store.SetContainerUsage(e.ImageUsage)
		store.SetEventSink(e.PublishImageEvent)
	}
	return w, nil
}
