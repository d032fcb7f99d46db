//go:build linux

package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berthdesktop/berth/guestagent/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// Volumes is what the engine needs of the volume store (guestagent/volume).
type Volumes interface {
	Create(name, driver string, opts, labels map[string]string) (volumetypes.Volume, error)
	Exists(name string) bool
	Reference(name, containerID string) error
	Dereference(name, containerID string)
	Remove(name string, force bool) error
	// Mount returns the directory to bind for containerID, mounting the
	// volume's device first if it has one; populated says whether its
	// first mount (the copy-up) has happened.
	Mount(name, containerID string) (path string, populated bool, err error)
	MarkPopulated(name string) error
	Unmount(name, containerID string) error
	// Path is the directory that holds volume name's data.
	Path(name string) string
}

var _ Volumes = (*volume.Store)(nil)

// volumeState is what the engine persists of a container's volumes.
type volumeState struct {
	// Anonymous are the volumes created for this container; rm -v (and
	// --rm) removes them.
	Anonymous []string `json:",omitempty"`
}

// createVolumes creates the volumes m's mounts need (named ones that do
// not exist yet, every anonymous one), references them for m.ID and fills
// their Source. On error nothing stays referenced or created.
func (e *Engine) createVolumes(m *meta) (retErr error) {
	var refs, created []string
	defer func() {
		if retErr == nil {
			return
		}
		for _, n := range refs {
			e.cfg.Volumes.Dereference(n, m.ID)
		}
		for _, n := range created {
			if err := e.cfg.Volumes.Remove(n, true); err != nil {
				e.log.Warn("removing volume after a failed create", "volume", n, "err", err)
			}
		}
	}()
	anon := map[string]bool{}
	for _, n := range m.Vol.Anonymous {
		anon[n] = true
	}
	for i := range m.Mounts {
		mp := &m.Mounts[i]
		if mp.Type != mount.TypeVolume {
			continue
		}
		if e.cfg.Volumes == nil {
			return errNotImplemented{errors.New("volumes are not supported by this engine")}
		}
		if !e.cfg.Volumes.Exists(mp.Name) {
			var opts, labels map[string]string
			driver := mp.Driver
			isAnon := len(mp.Name) == 64 && isHex(mp.Name) && e.volumeDeclaredAnonymous(m, mp)
			if mo := mountOptionFor(m.HostConfig, mp.Destination); mo != nil && mo.VolumeOptions != nil {
				labels = mo.VolumeOptions.Labels
				if dc := mo.VolumeOptions.DriverConfig; dc != nil {
					opts = dc.Options
				}
			}
			if isAnon {
				l := map[string]string{volume.AnonymousLabel: ""}
				for k, v := range labels {
					l[k] = v
				}
				labels = l
			}
			v, err := e.cfg.Volumes.Create(mp.Name, driver, opts, labels)
			if err != nil {
				return err
			}
			created = append(created, v.Name)
			if isAnon {
				anon[v.Name] = true
				m.Vol.Anonymous = append(m.Vol.Anonymous, v.Name)
			}
		}
		if err := e.cfg.Volumes.Reference(mp.Name, m.ID); err != nil {
			return err
		}
		refs = append(refs, mp.Name)
		mp.Source = e.cfg.Volumes.Path(mp.Name)
		mp.Driver = "local"
	}
	return nil
}

// volumeDeclaredAnonymous reports whether mp was planned as an anonymous
// volume: from Config.Volumes or a --mount volume without a source.
func (e *Engine) volumeDeclaredAnonymous(m *meta, mp *container.MountPoint) bool {
	for _, b := range m.HostConfig.Binds {
		if bb, err := parseBind(b); err == nil && bb.Named && bb.Source == mp.Name {
			return false
		}
	}
	for _, mm := range m.HostConfig.Mounts {
		if mm.Type == mount.TypeVolume && mm.Source == mp.Name {
			return false
		}
	}
	return true
}

func mountOptionFor(hc *container.HostConfig, dst string) *mount.Mount {
	for i := range hc.Mounts {
		if hc.Mounts[i].Type == mount.TypeVolume && cleanPath(hc.Mounts[i].Target) == dst {
			return &hc.Mounts[i]
		}
	}
	return nil
}

func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return strings.TrimSuffix(p, "/")
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// restoreVolumeRefs re-references the volumes of a container loaded from
// disk (the store keeps references in memory only).
func (e *Engine) restoreVolumeRefs(m *meta) {
	if e.cfg.Volumes == nil {
		return
	}
	for _, mp := range m.Mounts {
		if mp.Type == mount.TypeVolume {
			if err := e.cfg.Volumes.Reference(mp.Name, m.ID); err != nil {
				e.log.Warn("container references a missing volume", "container", m.ID, "volume", mp.Name, "err", err)
			}
		}
	}
}

// releaseVolumes drops a removed container's references; with
// removeAnonymous (rm -v, --rm) its anonymous volumes go too unless
// another container uses them. Failures are logged, as dockerd does.
func (e *Engine) releaseVolumes(c *ctr, removeAnonymous bool) {
	if e.cfg.Volumes == nil {
		return
	}
	for _, mp := range c.m.Mounts {
		if mp.Type == mount.TypeVolume {
			e.cfg.Volumes.Unmount(mp.Name, c.m.ID)
			e.cfg.Volumes.Dereference(mp.Name, c.m.ID)
		}
	}
	if !removeAnonymous {
		return
	}
	for _, n := range c.m.Vol.Anonymous {
		if err := e.cfg.Volumes.Remove(n, true); err != nil {
			e.log.Warn("removing anonymous volume", "container", c.m.ID, "volume", n, "err", err)
		}
	}
}

// mountVolumes readies c's volumes before its start: device mounts, and
// the copy-up of the image's content into each empty volume on its first
// mount (unless nocopy). Called with c.mu held.
func (e *Engine) mountVolumes(c *ctr) (retErr error) {
	if e.cfg.Volumes == nil {
		return nil
	}
	type copyUp struct{ name, dst, dir string }
	var todo []copyUp
	var fresh []string
	defer func() {
		if retErr != nil {
			e.unmountVolumes(c)
		}
	}()
	for _, mp := range c.m.Mounts {
		if mp.Type != mount.TypeVolume {
			continue
		}
		dir, populated, err := e.cfg.Volumes.Mount(mp.Name, c.m.ID)
		if err != nil {
			return err
		}
		if populated {
			continue
		}
		fresh = append(fresh, mp.Name)
		if noCopy(c.m.HostConfig, mp) {
			continue
		}
		if empty, err := dirEmpty(dir); err != nil || !empty {
			continue
		}
		todo = append(todo, copyUp{mp.Name, mp.Destination, dir})
	}
	if len(todo) > 0 {
		err := e.withRootfsView(c.m.ID, false, func(root string) error {
			for _, t := range todo {
				if err := copyUpVolume(root, t.dst, t.dir); err != nil {
					return fmt.Errorf("copy image content at %s into volume %s: %w", t.dst, t.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, n := range fresh {
		if err := e.cfg.Volumes.MarkPopulated(n); err != nil {
			e.log.Warn("recording the first mount of a volume", "volume", n, "err", err)
		}
	}
	return nil
}

// unmountVolumes ends c's use of its volumes (after its process exits).
func (e *Engine) unmountVolumes(c *ctr) {
	if e.cfg.Volumes == nil {
		return
	}
	for _, mp := range c.m.Mounts {
		if mp.Type == mount.TypeVolume {
			if err := e.cfg.Volumes.Unmount(mp.Name, c.m.ID); err != nil {
				e.log.Warn("unmounting volume", "container", c.m.ID, "volume", mp.Name, "err", err)
			}
		}
	}
}

// noCopy reports whether the volume at mp was asked not to get the
// image's content (-v name:/dst:nocopy, --mount ...,volume-nocopy).
func noCopy(hc *container.HostConfig, mp container.MountPoint) bool {
	for _, o := range strings.Split(mp.Mode, ",") {
		if o == "nocopy" {
			return true
		}
	}
	if mo := mountOptionFor(hc, mp.Destination); mo != nil && mo.VolumeOptions != nil {
		return mo.VolumeOptions.NoCopy
	}
	return false
}

func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// PublishVolumeEvent records an event of the volume store (given to
// volume.Store.SetEventSink). The store calls it with its lock held: it
// only takes the event log's lock.
func (e *Engine) PublishVolumeEvent(action, name string, attrs map[string]string) {
	t := time.Now()
	e.events.publish(events.Message{
		Type:     events.VolumeEventType,
		Action:   events.Action(action),
		Actor:    events.Actor{ID: name, Attributes: attrs},
		Scope:    "local",
		Time:     t.Unix(),
		TimeNano: t.UnixNano(),
	})
}
