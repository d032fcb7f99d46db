//go:build linux

package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/hostshare"
	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config configures an Engine.
type Config struct {
	// Root is the data root; container metadata lives in Root/containers.
	Root string
	// ExecRoot holds runtime state that does not survive a reboot.
	ExecRoot string

	Images  Images
	Runtime Runtime
	// DefaultSpec returns a fresh Docker-default OCI spec
	// (runtime.DefaultSpec); every container's spec starts from it.
	DefaultSpec func() *specs.Spec
	// Limits says what the cgroup manager can enforce here.
	Limits Limits
	// CountImages returns the number of images (docker info).
	CountImages func() int
	// Volumes is the volume store; nil refuses volumes (501).
	Volumes Volumes
	// Shares is the shared-folder policy bind sources must pass; the
	// zero policy allows every path (natively on Linux).
	Shares hostshare.Policy
	// Network is the engine's networks; nil runs default-bridge
	// containers with loopback only (dockerd's --bridge=none) and
	// refuses other networks.
	Network Networker
	// StartDNS starts the embedded DNS server of a container on a
	// user-defined network; nil leaves such containers without one.
	StartDNS DNSStarter
	// HostGatewayIP is what --add-host NAME:host-gateway and
	// host.docker.internal resolve to (daemon.json host-gateway-ip).
	HostGatewayIP netip.Addr
	// HostGatewayName adds host.docker.internal to every container's
	// /etc/hosts, as Docker Desktop resolves it everywhere.
	HostGatewayName bool
	// ContainerProxy is added to every container's Env at create
	// (HTTP_PROXY, http_proxy, ...; see ProxyEnv); zero adds nothing.
	ContainerProxy ProxyEnv
	// ReleaseLeftover frees what a killed engine left of a container whose
	// process is gone (its cgroup); nil does nothing.
	ReleaseLeftover func(id string) error
	// InsecureRegistries ("host:port" or CIDRs) and RegistryMirrors, as
	// daemon.json sets them: /info reports them as dockerd does.
	InsecureRegistries []string
	RegistryMirrors    []string

	// Daemon defaults (daemon.json). LogOpts are the default log-opts of
	// json-file containers (validated by logs.ParseOptions).
	LogOpts        map[string]string
	DefaultUlimits []*container.Ulimit
	Labels         []string
	Init           bool
	DefaultShmSize int64
	Debug          bool

	ServerVersion string
	Logger        *slog.Logger
}

// Engine implements the container, exec and system backends of
// guestagent/api.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ctrDir string

	mu    sync.Mutex
	byID  map[string]*ctr
	names map[string]string // "/name" -> id
	execs map[string]*execConfig

	events *eventLog
	dns    *dnsTable
	// sandboxes are the running containers' processes (network.go).
	sandboxes sandboxIndex
	// loopback brings up lo in the network namespace of a pid.
	loopback func(pid int) error

	// shuttingDown stops restart policies while the engine stops.
	shutdownMu   sync.Mutex
	shuttingDown bool
}

// New opens the engine on cfg.Root, loading the containers a previous run
// left there. Call Restore afterwards to reconcile and auto-start them.
func New(cfg Config) (*Engine, error) {
	if cfg.Images == nil || cfg.Runtime == nil || cfg.DefaultSpec == nil {
		return nil, fmt.Errorf("engine: Images, Runtime and DefaultSpec are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "28.0.0-berth"
	}
	if cfg.LogOpts == nil {
		cfg.LogOpts = map[string]string{}
	}
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		ctrDir:   filepath.Join(cfg.Root, "containers"),
		byID:     map[string]*ctr{},
		names:    map[string]string{},
		execs:    map[string]*execConfig{},
		events:   newEventLog(),
		dns:      newDNSTable(cfg.HostGatewayIP),
		loopback: loopbackUp,
	}
	if err := os.MkdirAll(e.ctrDir, 0o710); err != nil {
		return nil, fmt.Errorf("engine: create containers dir: %w", err)
	}
	ms, bad := loadMetas(e.ctrDir)
	for _, err := range bad {
		e.log.Warn("skipping container metadata", "err", err)
	}
	for _, m := range ms {
		c := &ctr{dir: filepath.Join(e.ctrDir, m.ID), m: *m, streams: newBroadcaster(), runStarted: make(chan struct{})}
		e.byID[m.ID] = c
		e.names[m.Name] = m.ID
		e.restoreVolumeRefs(&c.m)
	}
	return e, nil
}

// newID returns a random 64-hex container or exec ID that does not look
// like a number (dockerd's rule, so short IDs never parse as integers).
func newID() string {
	for {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("engine: random id: %v", err))
		}
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// lookup finds a container by full ID, name, or unique ID prefix.
func (e *Engine) lookup(ref string) (*ctr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookupLocked(ref)
}

func (e *Engine) lookupLocked(ref string) (*ctr, error) {
	if ref == "" {
		return nil, invalid("No container name or ID supplied")
	}
	if c, ok := e.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := e.names[name]; ok {
		return e.byID[id], nil
	}
	var found *ctr
	for id, c := range e.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, invalid("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(ref)
	}
	return found, nil
}

// reserveName claims name ("/x") for id, or returns dockerd's conflict.
// Called with e.mu held.
func (e *Engine) reserveNameLocked(name, id string) error {
	if other, ok := e.names[name]; ok {
		return conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	e.names[name] = id
	return nil
}

// generateName returns an unused adjective_surname name. Called with e.mu
// held.
func (e *Engine) generateNameLocked() string {
	for i := 0; ; i++ {
		name := "/" + adjectives[randInt(len(adjectives))] + "_" + surnames[randInt(len(surnames))]
		if i > 10 {
			name += itoa(randInt(100))
		}
		if _, ok := e.names[name]; !ok {
			return name
		}
	}
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

var adjectives = []string{
	"agile", "amber", "ardent", "bold", "brave", "bright", "calm", "candid", "clever", "cosmic",
	"crisp", "daring", "deft", "eager", "earnest", "fervent", "fleet", "gallant", "gentle", "glad",
	"hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "mellow", "merry", "nimble",
	"noble", "patient", "placid", "plucky", "proud", "quiet", "radiant", "serene", "sharp", "sincere",
	"steady", "sturdy", "swift", "tender", "tidy", "upbeat", "valiant", "vivid", "warm", "witty",
}

var surnames = []string{
	"agnesi", "archimedes", "babbage", "bohr", "boole", "cantor", "curie", "darwin", "dijkstra", "einstein",
	"euclid", "euler", "faraday", "fermat", "fermi", "feynman", "gauss", "germain", "hamilton", "hawking",
	"hopper", "hypatia", "kepler", "knuth", "lamarr", "lovelace", "maxwell", "meitner", "mendel", "newton",
	"noether", "pascal", "pasteur", "planck", "poincare", "ramanujan", "ritchie", "shannon", "tesla", "thompson",
	"turing", "volta", "wiles", "wright", "yalow", "zuse", "hodgkin", "franklin", "herschel", "galois",
}

// containers returns a snapshot of all containers.
func (e *Engine) containers() []*ctr {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*ctr, 0, len(e.byID))
	for _, c := range e.byID {
		out = append(out, c)
	}
	return out
}

func (e *Engine) isShuttingDown() bool {
	e.shutdownMu.Lock()
	defer e.shutdownMu.Unlock()
	return e.shuttingDown
}

// save persists c's metadata. Called with c.mu held.
func (e *Engine) saveLocked(c *ctr) {
	if c.removed {
		return
	}
	if err := saveMeta(c.dir, &c.m); err != nil {
		e.log.Error("saving container metadata", "container", c.m.ID, "err", err)
	}
}

func now() time.Time { return time.Now().UTC() }

// ImageUsage lists the containers that use an image and whether they run,
// for the image store's rmi checks.
func (e *Engine) ImageUsage(imageID digest.Digest) []image.ContainerUse {
	var out []image.ContainerUse
	for _, c := range e.containers() {
		c.mu.Lock()
		if c.m.ImageID == string(imageID) {
			out = append(out, image.ContainerUse{ID: c.m.ID, Running: c.m.State.Running})
		}
		c.mu.Unlock()
	}
	return out
}
