//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/builder"
	"github.com/berthdesktop/berth/guestagent/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
)

// This file is what the Dockerfile builder (guestagent/builder) needs of
// the engine: each RUN step is a container of the engine, on the step's
// parent image with the image's user, environment and working directory
// and the build's network; each COPY/ADD step extracts its files into a
// created (never started) container; either container's changes become
// the step's image through the image store's commit.

var _ builder.Backend = (*Engine)(nil)

// BuildImage implements builder.Backend.
func (e *Engine) BuildImage(ref string) (string, *dockerspec.DockerOCIImage, error) {
	img, err := e.cfg.Images.Resolve(ref)
	if err != nil {
		return "", nil, err
	}
	cfg := img.Config
	return img.ID.String(), &cfg, nil
}

func (e *Engine) buildCommitter() (committer, error) {
	cm, ok := e.cfg.Images.(committer)
	if !ok {
		return nil, errNotImplemented{fmt.Errorf("this image store cannot commit build steps")}
	}
	return cm, nil
}

// stepContainer creates the container of one build step.
func (e *Engine) stepContainer(ctx context.Context, parent string, cfg *container.Config, network string) (string, error) {
	cfg.Image = parent
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = []string{""} // the step's command, not the image's entrypoint
	}
	cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	if network == "" {
		network = "default"
	}
	resp, err := e.ContainerCreate(ctx, "", &container.CreateRequest{
		Config:     cfg,
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(network)},
	})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// BuildRun implements builder.Backend.
func (e *Engine) BuildRun(ctx context.Context, req builder.RunRequest) (string, int, error) {
	cm, err := e.buildCommitter()
	if err != nil {
		return "", 0, err
	}
	if req.Parent == "" {
		return "", 0, invalid("a RUN step on scratch has nothing to run: the image is empty (no %s)", req.Cmd[0])
	}
	id, err := e.stepContainer(ctx, req.Parent, &container.Config{
		Cmd: req.Cmd, Env: req.Env, User: req.User, WorkingDir: req.WorkingDir,
	}, req.Network)
	if err != nil {
		return "", 0, err
	}
	if req.Started != nil {
		req.Started(id)
	}
	defer e.removeStepContainer(id)
	c, err := e.lookup(id)
	if err != nil {
		return "", 0, err
	}
	if req.Output != nil {
		sub := &subscriber{stdout: req.Output, stderr: req.Output, done: make(chan struct{})}
		c.streams.add(sub)
		defer c.streams.remove(sub)
	}
	wait, err := e.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err != nil {
		return "", 0, err
	}
	if err := e.ContainerStart(ctx, id); err != nil {
		return "", 0, err
	}
	var res container.WaitResponse
	select {
	case res = <-wait:
	case <-ctx.Done():
		_ = e.ContainerKill(context.WithoutCancel(ctx), id, "KILL")
		return "", 0, ctx.Err()
	}
	if res.StatusCode != 0 {
		return "", int(res.StatusCode), nil
	}
	newID, err := cm.Commit(ctx, id, digest.Digest(req.Parent), commitOptions(req.Commit, false))
	if err != nil {
		return "", 0, err
	}
	return newID.String(), 0, nil
}

// BuildAddFiles implements builder.Backend.
func (e *Engine) BuildAddFiles(ctx context.Context, parent string, files io.Reader, commit builder.CommitRequest) (string, error) {
	cm, err := e.buildCommitter()
	if err != nil {
		return "", err
	}
	if parent == "" {
		// FROM scratch: no lower layers, so the files are the layer.
		opts := commitOptions(commit, false)
		opts.Layer = files
		newID, err := cm.Commit(ctx, "", "", opts)
		if err != nil {
			return "", err
		}
		return newID.String(), nil
	}
	id, err := e.stepContainer(ctx, parent, &container.Config{Cmd: []string{"/.berth-build-step"}}, "none")
	if err != nil {
		return "", err
	}
	defer e.removeStepContainer(id)
	t0 := time.Now()
	if err := e.ContainerExtractToDir(ctx, id, "/", api.ExtractOptions{CopyUIDGID: true}, files); err != nil {
		return "", err
	}
	t1 := time.Now()
	newID, err := cm.Commit(ctx, id, digest.Digest(parent), commitOptions(commit, false))
	if err != nil {
		return "", err
	}
	e.log.Debug("build step files", "extract", t1.Sub(t0), "commit", time.Since(t1))
	return newID.String(), nil
}

// BuildCommit implements builder.Backend.
func (e *Engine) BuildCommit(ctx context.Context, parent string, commit builder.CommitRequest) (string, error) {
	cm, err := e.buildCommitter()
	if err != nil {
		return "", err
	}
	newID, err := cm.Commit(ctx, "", digest.Digest(parent), commitOptions(commit, true))
	if err != nil {
		return "", err
	}
	return newID.String(), nil
}

func commitOptions(c builder.CommitRequest, empty bool) image.CommitOptions {
	return image.CommitOptions{Config: c.Config, Author: c.Author, CreatedBy: c.CreatedBy, EmptyLayer: empty}
}

func (e *Engine) removeStepContainer(id string) {
	c, err := e.lookup(id)
	if err != nil {
		return
	}
	if err := e.remove(c, true, true); err != nil {
		e.log.Warn("removing a build step's container", "container", id, "err", err)
	}
}

// BuildExport implements builder.Exporter (COPY --from): a tar of path in
// imageID, read through a created container removed when the tar is
// closed.
func (e *Engine) BuildExport(ctx context.Context, imageID, path string) (io.ReadCloser, error) {
	id, err := e.stepContainer(ctx, imageID, &container.Config{Cmd: []string{"/.berth-build-step"}}, "none")
	if err != nil {
		return nil, err
	}
	rc, _, err := e.ContainerArchivePath(ctx, id, path)
	if err != nil {
		e.removeStepContainer(id)
		return nil, err
	}
	return &exportReader{ReadCloser: rc, done: func() { e.removeStepContainer(id) }}, nil
}

type exportReader struct {
	io.ReadCloser
	done func()
}

func (r *exportReader) Close() error {
	err := r.ReadCloser.Close()
	r.done()
	return err
}

// BuildStat implements builder.Stater: the mode of path in imageID
// (symbolic links followed), and whether it exists.
func (e *Engine) BuildStat(ctx context.Context, imageID, path string) (fs.FileMode, bool, error) {
	id, err := e.stepContainer(ctx, imageID, &container.Config{Cmd: []string{"/.berth-build-step"}}, "none")
	if err != nil {
		return 0, false, err
	}
	defer e.removeStepContainer(id)
	st, err := e.ContainerStatPath(ctx, id, path)
	var nf interface{ NotFound() }
	if errors.As(err, &nf) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return st.Mode, true, nil
}
