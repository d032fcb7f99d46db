//go:build linux

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berthdesktop/berth/hostshare"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// bind is one parsed -v SRC:DST[:OPTS]. A Source that is not an absolute
// path names a volume (Named).
type bind struct {
	Source, Destination string
	RW                  bool
	Mode                string
	Propagation         string
	Named               bool
}

// parseBind parses -v SRC:DST[:OPTS] for a host path or a named volume.
func parseBind(spec string) (bind, error) {
	parts := strings.Split(spec, ":")
	var b bind
	switch len(parts) {
	case 2:
		b.Source, b.Destination = parts[0], parts[1]
	case 3:
		b.Source, b.Destination, b.Mode = parts[0], parts[1], parts[2]
	default:
		return b, invalid("invalid volume specification: '%s'", spec)
	}
	if b.Source == "" || b.Destination == "" {
		return b, invalid("invalid volume specification: '%s'", spec)
	}
	kind := "bind"
	if !filepath.IsAbs(b.Source) {
		b.Named = true
		kind = "volume"
		if !validVolumeName(b.Source) {
			return b, invalid("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", b.Source, b.Source)
		}
	}
	if !filepath.IsAbs(b.Destination) {
		return b, invalid("invalid volume specification: '%s': invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute", spec, kind, b.Destination)
	}
	if filepath.Clean(b.Destination) == "/" {
		return b, invalid("invalid volume specification: '%s': invalid mount config for type \"%s\": invalid specification: destination can't be '/'", spec, kind)
	}
	b.RW = true
	for _, o := range strings.Split(b.Mode, ",") {
		switch o {
		case "":
		case "ro":
			b.RW = false
		case "rw":
			b.RW = true
		case "z", "Z", "nocopy", "consistent", "cached", "delegated":
			if o == "nocopy" && !b.Named {
				return b, invalid("invalid volume specification: '%s': invalid mode: %s", spec, o)
			}
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			if b.Named {
				return b, invalid("invalid volume specification: '%s': invalid mode: %s", spec, o)
			}
			b.Propagation = o
		default:
			return b, invalid("invalid volume specification: '%s': invalid mode: %s", spec, o)
		}
	}
	if !b.Named {
		b.Source = filepath.Clean(b.Source)
	}
	b.Destination = filepath.Clean(b.Destination)
	return b, nil
}

func validVolumeName(name string) bool {
	if len(name) < 2 {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// mountPoints computes the MountPoints inspect reports for -v and --mount
// (binds, volumes, tmpfs), validating them; --tmpfs mounts are not listed
// (as dockerd). Volumes come back with their Name (empty for an anonymous
// --mount volume) and no Source yet: the engine fills both when it
// creates them.
func mountPoints(hc *container.HostConfig) ([]container.MountPoint, error) {
	var mps []container.MountPoint
	seen := map[string]bool{}
	add := func(mp container.MountPoint) error {
		if seen[mp.Destination] {
			return invalid("Duplicate mount point: %s", mp.Destination)
		}
		seen[mp.Destination] = true
		mps = append(mps, mp)
		return nil
	}
	for _, s := range hc.Binds {
		b, err := parseBind(s)
		if err != nil {
			return nil, err
		}
		mp := container.MountPoint{Type: mount.TypeBind, Source: b.Source, Destination: b.Destination, Mode: b.Mode, RW: b.RW}
		if b.Named {
			mp = container.MountPoint{Type: mount.TypeVolume, Name: b.Source, Destination: b.Destination, Driver: "local", Mode: b.Mode, RW: b.RW}
			if mp.Mode == "" {
				mp.Mode = "z"
			}
		} else {
			prop := b.Propagation
			if prop == "" {
				prop = "rprivate"
			}
			mp.Propagation = mount.Propagation(prop)
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		switch m.Type {
		case mount.TypeBind:
			if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
				return nil, invalid("invalid mount config for type \"bind\": source and target must be absolute paths")
			}
			if filepath.Clean(m.Target) == "/" {
				return nil, invalid("invalid mount config for type \"bind\": invalid specification: destination can't be '/'")
			}
			if _, err := os.Stat(m.Source); err != nil && (m.BindOptions == nil || !m.BindOptions.CreateMountpoint) {
				return nil, invalid("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			prop := mount.PropagationRPrivate
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				prop = m.BindOptions.Propagation
			}
			if err := add(container.MountPoint{Type: mount.TypeBind, Source: filepath.Clean(m.Source), Destination: filepath.Clean(m.Target), RW: !m.ReadOnly, Propagation: prop}); err != nil {
				return nil, err
			}
		case mount.TypeVolume:
			if !filepath.IsAbs(m.Target) {
				return nil, invalid("invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", m.Target)
			}
			if filepath.Clean(m.Target) == "/" {
				return nil, invalid("invalid mount config for type \"volume\": invalid specification: destination can't be '/'")
			}
			if m.BindOptions != nil {
				return nil, invalid("invalid mount config for type \"volume\": bind options are not supported")
			}
			if m.Source != "" && !validVolumeName(m.Source) {
				return nil, invalid("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", m.Source, m.Source)
			}
			if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
				return nil, errNotImplemented{fmt.Errorf("volume subpaths are not supported yet")}
			}
			driver := "local"
			if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil && m.VolumeOptions.DriverConfig.Name != "" {
				driver = m.VolumeOptions.DriverConfig.Name
			}
			if err := add(container.MountPoint{Type: mount.TypeVolume, Name: m.Source, Destination: filepath.Clean(m.Target), Driver: driver, Mode: "z", RW: !m.ReadOnly}); err != nil {
				return nil, err
			}
		case mount.TypeTmpfs:
			if !filepath.IsAbs(m.Target) {
				return nil, invalid("invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", m.Target)
			}
			if m.Source != "" {
				return nil, invalid("invalid mount config for type \"tmpfs\": source must not be specified")
			}
			if err := add(container.MountPoint{Type: mount.TypeTmpfs, Destination: filepath.Clean(m.Target), RW: !m.ReadOnly}); err != nil {
				return nil, err
			}
		default:
			return nil, errNotImplemented{fmt.Errorf("mount type %q is not supported yet", m.Type)}
		}
	}
	for dst := range hc.Tmpfs {
		if seen[filepath.Clean(dst)] {
			return nil, invalid("Duplicate mount point: %s", filepath.Clean(dst))
		}
		seen[filepath.Clean(dst)] = true
	}
	return mps, nil
}

// translateSources rewrites the bind sources a Windows docker CLI sent
// (C:\x, C:/x, /c/x, //c/x) as their VM paths (/run/host/c/x) when the
// engine serves a Windows host (Shares.ForHost("windows")); a source
// outside every shared folder is refused with the host path in the
// message. Other sources are left for the shared-folder check.
func (e *Engine) translateSources(hc *container.HostConfig) error {
	if e.cfg.Shares.HostOS() != "windows" {
		return nil
	}
	binds := slices.Clone(hc.Binds)
	for i, spec := range binds {
		src, rest, ok := hostshare.SplitBind(spec)
		if !ok {
			src, rest, _ = strings.Cut(spec, ":")
			if !hostshare.IsWindowsSource(src) {
				continue
			}
		}
		vm, err := e.cfg.Shares.Translate(src)
		if err != nil {
			return err
		}
		binds[i] = vm + ":" + rest
	}
	hc.Binds = binds
	mounts := slices.Clone(hc.Mounts)
	for i, m := range mounts {
		if m.Type != mount.TypeBind || !hostshare.IsWindowsSource(m.Source) {
			continue
		}
		vm, err := e.cfg.Shares.Translate(m.Source)
		if err != nil {
			return err
		}
		mounts[i].Source = vm
	}
	hc.Mounts = mounts
	return nil
}

// planMounts is mountPoints plus what needs the engine: the shared-folder
// check of bind sources, the anonymous volumes of the image's VOLUME and
// -v /path (Config.Volumes), and --volumes-from. Anonymous volumes get
// their random names here; createVolumes makes them.
func (e *Engine) planMounts(hc *container.HostConfig, cfg *container.Config) ([]container.MountPoint, error) {
	if err := e.translateSources(hc); err != nil {
		return nil, err
	}
	mps, err := mountPoints(hc)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, mp := range mps {
		taken[mp.Destination] = true
	}
	for dst := range hc.Tmpfs {
		taken[filepath.Clean(dst)] = true
	}
	for _, ref := range hc.VolumesFrom {
		name, mode, _ := strings.Cut(ref, ":")
		switch mode {
		case "", "ro", "rw", "z", "Z":
		default:
			return nil, invalid("invalid mode for volumes-from: %s", mode)
		}
		src, err := e.lookup(name)
		if err != nil {
			return nil, err
		}
		src.mu.Lock()
		from := append([]container.MountPoint(nil), src.m.Mounts...)
		src.mu.Unlock()
		for _, mp := range from {
			if mp.Type == mount.TypeTmpfs || taken[mp.Destination] {
				continue
			}
			switch mode {
			case "ro":
				mp.RW = false
			case "rw":
				mp.RW = true
			}
			taken[mp.Destination] = true
			mps = append(mps, mp)
		}
	}
	dsts := make([]string, 0, len(cfg.Volumes))
	for dst := range cfg.Volumes {
		dsts = append(dsts, dst)
	}
	slices.Sort(dsts)
	for _, dst := range dsts {
		if !filepath.IsAbs(dst) {
			return nil, invalid("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", dst, dst)
		}
		d := filepath.Clean(dst)
		if d == "/" {
			return nil, invalid("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid specification: destination can't be '/'", dst)
		}
		if taken[d] {
			continue
		}
		taken[d] = true
		mps = append(mps, container.MountPoint{Type: mount.TypeVolume, Destination: d, Driver: "local", RW: true})
	}
	for i := range mps {
		if mps[i].Type == mount.TypeVolume && mps[i].Name == "" {
			mps[i].Name = newID()
		}
		if mps[i].Type == mount.TypeBind {
			if err := e.cfg.Shares.Check(mps[i].Source); err != nil {
				return nil, err
			}
		}
	}
	return mps, nil
}

// userMounts adds the spec mounts of the container's binds and volumes to
// extra and their destinations to dsts. Volumes without a Source (not
// created yet: create validating the spec) are skipped.
func (e *Engine) userMounts(m *meta, extra *[]specs.Mount, dsts map[string]bool) error {
	nonRecursive := map[string]bool{}
	for _, mm := range m.HostConfig.Mounts {
		if mm.Type == mount.TypeBind && mm.BindOptions != nil && mm.BindOptions.NonRecursive {
			nonRecursive[filepath.Clean(mm.Target)] = true
		}
	}
	for _, mp := range m.Mounts {
		var o []string
		switch mp.Type {
		case mount.TypeBind:
			if err := e.cfg.Shares.Check(mp.Source); err != nil {
				return err
			}
			o = []string{"rbind"}
			if nonRecursive[mp.Destination] {
				o = []string{"bind"}
			}
			if mp.Propagation != "" {
				o = append(o, string(mp.Propagation))
			}
			// -v creates a missing host directory, as dockerd does; an
			// existing file is bound as it is.
			if _, err := os.Stat(mp.Source); os.IsNotExist(err) {
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return fmt.Errorf("create bind source %s: %w", mp.Source, err)
				}
			}
		case mount.TypeVolume:
			if mp.Source == "" {
				continue
			}
			o = []string{"rbind", "rprivate"}
		default:
			continue
		}
		if !mp.RW {
			o = append(o, "ro")
		}
		*extra = append(*extra, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: o})
		dsts[mp.Destination] = true
	}
	return nil
}

// tmpfsMode turns --mount tmpfs-mode into the mode= option: the CLI sends
// the octal number's bits as they are (1770 is 0o1770, not os.ModeSticky),
// while Go's own FileMode flags may arrive from other clients.
func tmpfsMode(m os.FileMode) uint32 {
	v := uint32(m) & 0o7777
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
