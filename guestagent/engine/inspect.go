//go:build linux

package engine

import (
	"context"
	"strings"

	"github.com/berthdesktop/berth/guestagent/image"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
)

// ContainerInspect implements api.ContainerBackend.
func (e *Engine) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	c, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	m := c.m
	var execIDs []string
	e.mu.Lock()
	for _, id := range c.execIDs {
		if x, ok := e.execs[id]; ok {
			x.mu.Lock()
			if x.running || !x.started {
				execIDs = append(execIDs, id)
			}
			x.mu.Unlock()
		}
	}
	e.mu.Unlock()
	c.mu.Unlock()
	resp := e.inspect(&m)
	resp.ExecIDs = execIDs
	if mounts, err := e.cfg.Images.RootfsMounts(m.ID); err == nil {
		resp.GraphDriver.Data = overlayData(mounts)
	}
	if size {
		if rw, total, err := e.cfg.Images.RootfsSize(m.ID); err == nil {
			resp.SizeRw, resp.SizeRootFs = &rw, &total
		}
	}
	return resp, nil
}

// inspect fills InspectResponse as dockerd does.
func (e *Engine) inspect(m *meta) *container.InspectResponse {
	st := &m.State
	hc := *m.HostConfig
	cfg := *m.Config
	mounts := make([]container.MountPoint, 0, len(m.Mounts))
	mounts = append(mounts, m.Mounts...)
	return &container.InspectResponse{
		ID:      m.ID,
		Created: dockerTime(m.Created),
		Path:    m.Path,
		Args:    append([]string{}, m.Args...),
		State: &container.State{
			Status:     st.stateString(),
			Running:    st.Running,
			Paused:     st.Paused,
			Restarting: st.Restarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Dead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  dockerTime(st.StartedAt),
			FinishedAt: dockerTime(st.FinishedAt),
			Health:     m.Health.toAPI(),
		},
		Image:          m.ImageID,
		ResolvConfPath: m.ResolvConfPath,
		HostnamePath:   m.HostnamePath,
		HostsPath:      m.HostsPath,
		LogPath:        m.LogPath,
		Name:           m.Name,
		RestartCount:   m.RestartCount,
		Driver:         "overlay2",
		Platform:       "linux",
		HostConfig:     &hc,
		GraphDriver:    &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		Mounts:         mounts,
		Config:         &cfg,
		NetworkSettings: &container.NetworkSettings{
			SandboxKey: sandboxKey(m),
			Ports:      portMap(m),
			Networks:   e.networks(m),
		},
	}
}

func sandboxKey(m *meta) string {
	if !m.State.Running || m.State.Pid == 0 || !onBridge(m) && modeOf(m).kind != "none" {
		return ""
	}
	return "/proc/" + itoa(m.State.Pid) + "/ns/net"
}

// overlayData is GraphDriver.Data as dockerd's overlay2 reports it, from
// the rootfs overlay mount's options.
func overlayData(mounts []image.Mount) map[string]string {
	data := map[string]string{}
	for _, m := range mounts {
		if m.Type != "overlay" {
			continue
		}
		for _, o := range m.Options {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				continue
			}
			switch k {
			case "lowerdir":
				data["LowerDir"] = v
			case "upperdir":
				data["UpperDir"] = v
			case "workdir":
				data["WorkDir"] = v
			}
		}
	}
	return data
}
