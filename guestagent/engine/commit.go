//go:build linux

package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
)

// committer is the image store's docker commit (guestagent/image).
type committer interface {
	Commit(ctx context.Context, key string, parent digest.Digest, opts image.CommitOptions) (digest.Digest, error)
}

// ContainerCommit implements api.Committer: the container's layer becomes
// a new image on top of its image, with the container's config as the
// image's, overridden by opts.Config and then opts.Changes (dockerd's
// order: the changes apply to the given config, the container's fills
// what is left unset).
func (e *Engine) ContainerCommit(ctx context.Context, name string, opts api.CommitOptions) (string, error) {
	cm, ok := e.cfg.Images.(committer)
	if !ok {
		return "", errNotImplemented{fmt.Errorf("this image store cannot commit containers")}
	}
	c, err := e.lookup(name)
	if err != nil {
		return "", err
	}
	var user dockerspec.DockerOCIImageConfig
	if opts.Config != nil {
		user = imageConfigOf(opts.Config)
	}
	if err := image.ApplyChanges(&user, opts.Changes); err != nil {
		return "", err
	}

	c.mu.Lock()
	id, imageID := c.m.ID, digest.Digest(c.m.ImageID)
	ctrCfg := imageConfigOf(c.m.Config)
	createdBy := strings.Join(append([]string{c.m.Path}, c.m.Args...), " ")
	st := c.m.State
	c.mu.Unlock()
	if st.RemovalInProgress || st.Dead {
		return "", conflict("You cannot commit container %s which is being removed or is dead", id)
	}
	mergeCommitConfig(&user, &ctrCfg)

	// Freeze the container while its layer is read, as dockerd does.
	if opts.Pause && st.Running && !st.Paused {
		if err := e.ContainerPause(ctx, id); err != nil {
			return "", fmt.Errorf("pause container %s to commit it: %w", id, err)
		}
		defer func() {
			if err := e.ContainerUnpause(context.WithoutCancel(ctx), id); err != nil {
				e.log.Warn("unpause after commit", "container", id, "err", err)
			}
		}()
	}
	newID, err := cm.Commit(ctx, id, imageID, image.CommitOptions{
		Config:    user,
		Author:    opts.Author,
		Comment:   opts.Comment,
		CreatedBy: createdBy,
		Repo:      opts.Repo,
		Tag:       opts.Tag,
	})
	if err != nil {
		return "", err
	}
	ref := ""
	if opts.Repo != "" {
		ref = opts.Repo
		if opts.Tag != "" {
			ref += ":" + opts.Tag
		}
	}
	e.emit(c, events.ActionCommit, map[string]string{"comment": opts.Comment, "imageID": newID.String(), "imageRef": ref})
	return newID.String(), nil
}

// imageConfigOf is the part of a container config an image keeps.
func imageConfigOf(c *container.Config) dockerspec.DockerOCIImageConfig {
	var ic dockerspec.DockerOCIImageConfig
	ic.User = c.User
	ic.Env = append([]string(nil), c.Env...)
	ic.Entrypoint = append([]string(nil), c.Entrypoint...)
	ic.Cmd = append([]string(nil), c.Cmd...)
	ic.WorkingDir = c.WorkingDir
	ic.StopSignal = c.StopSignal
	if len(c.Labels) > 0 {
		ic.Labels = map[string]string{}
		for k, v := range c.Labels {
			ic.Labels[k] = v
		}
	}
	if len(c.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		ic.Volumes = map[string]struct{}{}
		for v := range c.Volumes {
			ic.Volumes[v] = struct{}{}
		}
	}
	ic.Healthcheck = c.Healthcheck
	ic.OnBuild = append([]string(nil), c.OnBuild...)
	ic.Shell = append([]string(nil), c.Shell...)
	return ic
}

// mergeCommitConfig fills what user leaves unset from the container's
// config, as dockerd's commit does.
func mergeCommitConfig(user, ctr *dockerspec.DockerOCIImageConfig) {
	if user.User == "" {
		user.User = ctr.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = ctr.ExposedPorts
	} else {
		for p := range ctr.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		have := map[string]bool{}
		for _, kv := range user.Env {
			k, _, _ := strings.Cut(kv, "=")
			have[k] = true
		}
		for _, kv := range ctr.Env {
			if k, _, _ := strings.Cut(kv, "="); !have[k] {
				user.Env = append(user.Env, kv)
			}
		}
	}
	if len(user.Labels) == 0 {
		user.Labels = ctr.Labels
	} else {
		for k, v := range ctr.Labels {
			if _, ok := user.Labels[k]; !ok {
				user.Labels[k] = v
			}
		}
	}
	if len(user.Entrypoint) == 0 && len(user.Cmd) == 0 {
		user.Entrypoint, user.Cmd = ctr.Entrypoint, ctr.Cmd
	}
	if len(user.Volumes) == 0 {
		user.Volumes = ctr.Volumes
	} else {
		for v := range ctr.Volumes {
			user.Volumes[v] = struct{}{}
		}
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
	if user.Healthcheck == nil {
		user.Healthcheck = ctr.Healthcheck
	}
	if len(user.OnBuild) == 0 {
		user.OnBuild = ctr.OnBuild
	}
	if len(user.Shell) == 0 {
		user.Shell = ctr.Shell
	}
}
