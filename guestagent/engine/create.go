//go:build linux

package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// ContainerCreate implements api.ContainerBackend.
func (e *Engine) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	var resp container.CreateResponse
	if req == nil || req.Config == nil {
		return resp, invalid("config cannot be empty in order to create a container")
	}
	cfg := *req.Config
	hc := &container.HostConfig{}
	if req.HostConfig != nil {
		c := *req.HostConfig
		hc = &c
	}
	if name != "" && !validName.MatchString(name) {
		return resp, invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if cfg.Image == "" {
		return resp, invalid("no image specified")
	}
	if err := validateHostConfig(hc); err != nil {
		return resp, err
	}
	if cfg.WorkingDir != "" && !filepath.IsAbs(cfg.WorkingDir) {
		return resp, invalid("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if err := validateHealthcheck(cfg.Healthcheck); err != nil {
		return resp, err
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return resp, err
		}
	}
	img, err := e.cfg.Images.Resolve(cfg.Image)
	if err != nil {
		return resp, err
	}
	if want, ok := api.RequestedPlatform(ctx); ok {
		if err := checkPlatform(cfg.Image, img, want, binfmtDir); err != nil {
			return resp, err
		}
	}
	// The proxies are the user's -e, as the docker CLI sends them:
	// they override the image's and give way to the user's.
	cfg.Env = e.cfg.ContainerProxy.addTo(cfg.Env)
	mergeImageConfig(&cfg, img)
	path, args := entrypointAndArgs(cfg.Entrypoint, cfg.Cmd)
	if path == "" {
		return resp, invalid("No command specified")
	}
	mps, err := e.planMounts(hc, &cfg)
	if err != nil {
		return resp, err
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Type == "json-file" && len(hc.LogConfig.Config) == 0 && len(e.cfg.LogOpts) > 0 {
		hc.LogConfig.Config = map[string]string{}
		for k, v := range e.cfg.LogOpts {
			hc.LogConfig.Config[k] = v
		}
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = e.cfg.DefaultShmSize
		if hc.ShmSize == 0 {
			hc.ShmSize = defaultShmSize
		}
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModePrivate
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	if !hc.Privileged {
		// dockerd records the default masked and read-only paths.
		def := e.cfg.DefaultSpec()
		if hc.MaskedPaths == nil && def.Linux != nil {
			hc.MaskedPaths = append([]string{}, def.Linux.MaskedPaths...)
		}
		if hc.ReadonlyPaths == nil && def.Linux != nil {
			hc.ReadonlyPaths = append([]string{}, def.Linux.ReadonlyPaths...)
		}
	}
	resp.Warnings = e.resourceWarnings(&hc.Resources)
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}

	planned := &meta{Config: &cfg, HostConfig: hc}
	if err := e.planNetworks(planned, req.NetworkingConfig); err != nil {
		return resp, err
	}
	id := newID()
	if cfg.Hostname == "" {
		if mode := modeOf(planned); mode.kind == "container" {
			if t, err := e.lookup(mode.name); err == nil {
				t.mu.Lock()
				cfg.Hostname = t.m.Config.Hostname
				t.mu.Unlock()
			}
		} else if hc.NetworkMode == "host" {
			h, _ := os.Hostname()
			cfg.Hostname = h
		} else {
			cfg.Hostname = id[:12]
		}
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if cfg.Env == nil {
		cfg.Env = []string{}
	}
	dir := filepath.Join(e.ctrDir, id)
	m := meta{
		ID:             id,
		Created:        now(),
		Path:           path,
		Args:           args,
		Config:         &cfg,
		HostConfig:     hc,
		ImageID:        string(img.ID),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		Mounts:         mps,
		Nets:           planned.Nets,
	}
	if hc.LogConfig.Type == "json-file" {
		m.LogPath = filepath.Join(dir, id+"-json.log")
	}
	if mode := modeOf(&m); mode.kind == "container" {
		// The namespace's owner keeps /etc/hosts and resolv.conf.
		m.HostsPath = filepath.Join(e.ctrDir, mode.name, "hosts")
		m.ResolvConfPath = filepath.Join(e.ctrDir, mode.name, "resolv.conf")
	}
	// Validate what start will build, so that bad options fail here.
	if _, _, err := e.buildSpec(&m); err != nil {
		return resp, err
	}

	e.mu.Lock()
	if name == "" {
		m.Name = e.generateNameLocked()
	} else {
		m.Name = "/" + strings.TrimPrefix(name, "/")
	}
	if err := e.reserveNameLocked(m.Name, id); err != nil {
		e.mu.Unlock()
		return resp, err
	}
	e.mu.Unlock()
	release := func() {
		e.mu.Lock()
		delete(e.names, m.Name)
		e.mu.Unlock()
		os.RemoveAll(dir)
	}

	if err := os.MkdirAll(dir, 0o710); err != nil {
		release()
		return resp, fmt.Errorf("create container dir: %w", err)
	}
	if err := e.writeEtcFiles(&m); err != nil {
		release()
		return resp, err
	}
	if _, err := e.cfg.Images.PrepareRootfs(id, img.ID); err != nil {
		release()
		return resp, fmt.Errorf("prepare rootfs of %s: %w", id, err)
	}
	if err := e.createVolumes(&m); err != nil {
		e.cfg.Images.RemoveRootfs(id)
		release()
		return resp, err
	}
	c := &ctr{dir: dir, m: m, streams: newBroadcaster(), runStarted: make(chan struct{})}
	if err := saveMeta(dir, &c.m); err != nil {
		e.releaseVolumes(c, true)
		e.cfg.Images.RemoveRootfs(id)
		release()
		return resp, err
	}
	e.mu.Lock()
	e.byID[id] = c
	e.mu.Unlock()
	e.emit(c, events.ActionCreate, nil)
	resp.ID = id
	return resp, nil
}

// validateHostConfig checks what dockerd refuses at create.
func validateHostConfig(hc *container.HostConfig) error {
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return invalid("%s", err.Error())
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return invalid("can't create 'AutoRemove' container with restart policy")
	}
	switch hc.LogConfig.Type {
	case "", "json-file":
		if _, err := logs.ParseOptions(hc.LogConfig.Config); err != nil {
			return invalid("%s", err.Error())
		}
	case "none":
	default:
		return invalid("logger: no log driver named '%s' is registered", hc.LogConfig.Type)
	}
	if nm := hc.NetworkMode; nm.IsContainer() && nm.ConnectedContainer() == "" {
		return invalid("invalid network mode: %s", nm)
	}
	if hc.PidMode.IsContainer() || hc.IpcMode.IsContainer() || hc.Cgroup.IsContainer() {
		return errNotImplemented{fmt.Errorf("sharing namespaces with another container is not supported yet")}
	}
	if hc.UsernsMode != "" && !hc.UsernsMode.IsHost() {
		return errNotImplemented{fmt.Errorf("user namespace mode %q is not supported yet", hc.UsernsMode)}
	}
	if !hc.PidMode.Valid() || !hc.IpcMode.Valid() || !hc.UTSMode.Valid() || !hc.CgroupnsMode.Valid() {
		return invalid("invalid namespace mode")
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return invalid("Minimum memory limit allowed is 6MB")
	}
	if hc.NanoCPUs < 0 {
		return invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if hc.NanoCPUs > 0 && hc.NanoCPUs > int64(numCPU())*1e9 {
		return invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if hc.ShmSize < 0 {
		return invalid("SHM size can not be less than 0")
	}
	return nil
}

// mergeImageConfig fills what the user left unset from the image config,
// by dockerd's rules.
func mergeImageConfig(cfg *container.Config, img *image.Image) {
	ic := img.Config.Config
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "": clear the image's entrypoint.
		cfg.Entrypoint = []string{}
	}
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = ic.Entrypoint
		}
	}
	cfg.Env = replaceOrAppendEnv(ic.Env, cfg.Env)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	if len(ic.ExposedPorts) > 0 && cfg.ExposedPorts == nil {
		cfg.ExposedPorts = network.PortSet{}
	}
	for p := range ic.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	if len(ic.Volumes) > 0 && cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	for v := range ic.Volumes {
		cfg.Volumes[v] = struct{}{}
	}
	mergeHealthcheck(cfg, img)
	if len(cfg.Shell) == 0 {
		cfg.Shell = img.Config.Config.Shell
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = img.Config.Config.OnBuild
	}
}

// entrypointAndArgs is dockerd's split of Entrypoint+Cmd into the path and
// arguments of the process.
func entrypointAndArgs(entrypoint, cmd []string) (string, []string) {
	full := append(append([]string(nil), entrypoint...), cmd...)
	if len(full) == 0 {
		return "", nil
	}
	return full[0], append([]string{}, full[1:]...)
}

// writeEtcFiles makes the container's own /etc/hosts, /etc/hostname and
// /etc/resolv.conf (bind-mounted at start). A container that joins
// another's network namespace uses that one's files instead (spec.go).
func (e *Engine) writeEtcFiles(m *meta) error {
	if err := os.WriteFile(m.HostnamePath, []byte(m.Config.Hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname file: %w", err)
	}
	if modeOf(m).kind == "container" {
		return nil
	}
	hosts, err := e.hostsFile(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(m.HostsPath, hosts, 0o644); err != nil {
		return fmt.Errorf("write hosts file: %w", err)
	}
	if err := os.WriteFile(m.ResolvConfPath, resolvConf(m, e.usesEmbeddedDNS(m)), 0o644); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	return nil
}

func numCPU() int { return goruntime.NumCPU() }
