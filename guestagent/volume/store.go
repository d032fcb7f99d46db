//go:build linux

package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/volume"
)

// AnonymousLabel marks a volume the engine created for a container
// without a name (dockerd's label); prune removes only these unless told
// to remove all.
const AnonymousLabel = "com.docker.volume.anonymous"

// DriverName is the only driver: the local one.
const DriverName = "local"

const metaFile = "berth-volume.json"

// validName is dockerd's rule for local volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// meta is what is persisted of a volume.
type meta struct {
	Name      string
	CreatedAt time.Time
	Labels    map[string]string
	Options   map[string]string
	// Populated is set once the volume has been mounted into a container
	// for the first time (with the image's content copied up, or found
	// not empty): copy-up happens at most once.
	Populated bool
}

// vol is one volume and its in-memory state.
type vol struct {
	m    meta
	refs map[string]bool // containers that reference the volume
	// users are the containers that have it mounted now; a volume with
	// a device is mounted on _data while there is at least one.
	users map[string]bool
	// claimed is set once a container has been told it makes the first
	// mount, so that two containers starting together do not both copy
	// the image's content into the volume.
	claimed bool
}

// Store is the local volume driver rooted at one directory.
type Store struct {
	root string
	log  *slog.Logger

	mu   sync.Mutex
	vols map[string]*vol

	// sink receives volume events (create, destroy, mount, unmount).
	sink func(action, name string, attrs map[string]string)
	// mountFn and unmountFn are mount(2) and umount(2) (fakes in tests).
	mountFn   func(source, target, fstype string, flags uintptr, data string) error
	unmountFn func(target string) error
	isMounted func(dir string) (bool, error)
}

// Open loads the volumes under root (created if missing). A volume whose
// metadata cannot be read is skipped with a warning. Device mounts a
// previous run left on _data are undone: no container uses them yet.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volume: create %s: %w", root, err)
	}
	s := &Store{root: root, log: log, vols: map[string]*vol{}, mountFn: sysMount, unmountFn: sysUnmount, isMounted: isMountpoint}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volume: read %s: %w", root, err)
	}
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		var m meta
		b, err := os.ReadFile(filepath.Join(root, ent.Name(), metaFile))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil || m.Name != ent.Name() {
			log.Warn("skipping volume with unreadable metadata", "volume", ent.Name(), "err", err)
			continue
		}
		v := &vol{m: m, refs: map[string]bool{}, users: map[string]bool{}}
		if hasDevice(m.Options) {
			if mounted, _ := s.isMounted(s.dataDir(m.Name)); mounted {
				if err := s.unmountFn(s.dataDir(m.Name)); err != nil {
					log.Warn("unmounting stale volume mount", "volume", m.Name, "err", err)
				}
			}
		}
		s.vols[m.Name] = v
	}
	return s, nil
}

// SetEventSink makes the store report volume events to sink.
func (s *Store) SetEventSink(sink func(action, name string, attrs map[string]string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sink = sink
}

func (s *Store) emit(action, name string, attrs map[string]string) {
	if s.sink != nil {
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["driver"] = DriverName
		s.sink(action, name, attrs)
	}
}

func (s *Store) dir(name string) string     { return filepath.Join(s.root, name) }
func (s *Store) dataDir(name string) string { return filepath.Join(s.root, name, "_data") }

// Path returns the directory containers mount for volume name.
func (s *Store) Path(name string) string { return s.dataDir(name) }

// Create makes volume name with the local driver, or returns the existing
// one of that name. An empty name makes a random 64-hex name. Options
// are the local driver's type, device and o.
func (s *Store) Create(name, driver string, opts, labels map[string]string) (volume.Volume, error) {
	if driver != "" && driver != DriverName {
		return volume.Volume{}, notFoundError{fmt.Errorf("error looking up volume plugin %s: plugin %q not found", driver, driver)}
	}
	if name == "" {
		name = randomName()
	}
	if !validName.MatchString(name) {
		return volume.Volume{}, invalidError{fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)}
	}
	if err := validateOpts(opts); err != nil {
		return volume.Volume{}, invalidError{fmt.Errorf("create %s: %w", name, err)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		return s.toAPI(v), nil
	}
	m := meta{Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: copyMap(labels), Options: copyMap(opts)}
	if err := os.MkdirAll(s.dataDir(name), 0o755); err != nil {
		return volume.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Chmod(s.dir(name), 0o701); err != nil {
		return volume.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := writeMeta(s.dir(name), &m); err != nil {
		os.RemoveAll(s.dir(name))
		return volume.Volume{}, err
	}
	v := &vol{m: m, refs: map[string]bool{}, users: map[string]bool{}}
	s.vols[name] = v
	s.emit("create", name, nil)
	return s.toAPI(v), nil
}

// Get returns volume name.
func (s *Store) Get(name string) (volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return volume.Volume{}, errNoSuchVolume("get", name)
	}
	return s.toAPI(v), nil
}

// Exists reports whether volume name exists.
func (s *Store) Exists(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.vols[name]
	return ok
}

// List returns every volume, sorted by name. withUsage fills UsageData
// (reference count and size on disk).
func (s *Store) List(withUsage bool) []volume.Volume {
	s.mu.Lock()
	out := make([]volume.Volume, 0, len(s.vols))
	for _, v := range s.vols {
		av := s.toAPI(v)
		if withUsage {
			av.UsageData = &volume.UsageData{RefCount: int64(len(v.refs)), Size: -1}
		}
		out = append(out, av)
	}
	s.mu.Unlock()
	if withUsage {
		for i := range out {
			if n, err := dirSize(out[i].Mountpoint); err == nil {
				out[i].UsageData.Size = n
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Remove deletes volume name. A volume referenced by a container is not
// removed (409). force makes a missing volume no error.
func (s *Store) Remove(name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		if force {
			return nil
		}
		return errNoSuchVolume("remove", name)
	}
	return s.removeLocked(v)
}

func (s *Store) removeLocked(v *vol) error {
	name := v.m.Name
	if len(v.refs) > 0 {
		ids := make([]string, 0, len(v.refs))
		for id := range v.refs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return conflictError{fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(ids, ", "))}
	}
	if mounted, _ := s.isMounted(s.dataDir(name)); mounted {
		if err := s.unmountFn(s.dataDir(name)); err != nil {
			return fmt.Errorf("remove %s: unmount: %w", name, err)
		}
	}
	if err := os.RemoveAll(s.dir(name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	delete(s.vols, name)
	s.emit("destroy", name, nil)
	return nil
}

// Reference records that container id uses volume name (from its
// creation until its removal).
func (s *Store) Reference(name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return errNoSuchVolume("get", name)
	}
	v.refs[id] = true
	return nil
}

// Dereference drops container id's reference on volume name.
func (s *Store) Dereference(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vols[name]; ok {
		delete(v.refs, id)
	}
}

// Anonymous reports whether volume name carries the anonymous label.
func (s *Store) Anonymous(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return false
	}
	_, anon := v.m.Labels[AnonymousLabel]
	return anon
}

// Mount makes volume name ready for container id and returns the
// directory to bind into it. A volume with a device is mounted on its
// _data the first time a container needs it. populated says whether the
// volume has had its first mount already (copy-up happens only before).
func (s *Store) Mount(name, id string) (path string, populated bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return "", false, errNoSuchVolume("mount", name)
	}
	dir := s.dataDir(name)
	if len(v.users) == 0 && hasDevice(v.m.Options) {
		if mounted, _ := s.isMounted(dir); !mounted {
			flags, data := parseMountOptions(v.m.Options["o"])
			if err := s.mountFn(v.m.Options["device"], dir, v.m.Options["type"], flags, data); err != nil {
				return "", false, fmt.Errorf("error while mounting volume '%s': failed to mount local volume: mount %s:%s, flags: %#x, data: %s: %w", dir, v.m.Options["device"], dir, flags, data, err)
			}
		}
	}
	v.users[id] = true
	s.emit("mount", name, map[string]string{"container": id})
	populated = v.m.Populated || v.claimed
	v.claimed = true
	return dir, populated, nil
}

// MarkPopulated records that volume name has had its first mount.
func (s *Store) MarkPopulated(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok || v.m.Populated {
		return nil
	}
	v.m.Populated = true
	return writeMeta(s.dir(name), &v.m)
}

// Unmount ends container id's use of volume name; the device mount of a
// volume goes when its last user does.
func (s *Store) Unmount(name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok || !v.users[id] {
		return nil
	}
	delete(v.users, id)
	s.emit("unmount", name, map[string]string{"container": id})
	if len(v.users) == 0 && hasDevice(v.m.Options) {
		if mounted, _ := s.isMounted(s.dataDir(name)); mounted {
			if err := s.unmountFn(s.dataDir(name)); err != nil {
				return fmt.Errorf("unmount volume %s: %w", name, err)
			}
		}
	}
	return nil
}

// Size returns the disk usage of volume name's data.
func (s *Store) Size(name string) (int64, error) {
	return dirSize(s.dataDir(name))
}

func (s *Store) toAPI(v *vol) volume.Volume {
	labels := copyMap(v.m.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	opts := copyMap(v.m.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	return volume.Volume{
		CreatedAt:  v.m.CreatedAt.Format(time.RFC3339),
		Driver:     DriverName,
		Labels:     labels,
		Mountpoint: s.dataDir(v.m.Name),
		Name:       v.m.Name,
		Options:    opts,
		Scope:      "local",
	}
}

// validateOpts checks the local driver's options as dockerd does.
func validateOpts(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o", "size":
		default:
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	if _, ok := opts["size"]; ok {
		return errors.New("quota size requested but no quota support")
	}
	if opts["o"] != "" || opts["device"] != "" || opts["type"] != "" {
		if opts["type"] == "" && !strings.Contains(","+opts["o"]+",", ",bind,") {
			return errors.New(`missing required option: "type"`)
		}
		if opts["device"] == "" {
			return errors.New(`missing required option: "device"`)
		}
	}
	return nil
}

func hasDevice(opts map[string]string) bool { return opts["device"] != "" }

func writeMeta(dir string, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write volume metadata: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, metaFile)); err != nil {
		return fmt.Errorf("write volume metadata: %w", err)
	}
	return nil
}

func randomName() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("volume: random name: %v", err))
	}
	return hex.EncodeToString(b[:])
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Names lists the volume names, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.vols))
	for n := range s.vols {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
