// Package runtime owns running containers on Linux: it creates the
// namespaces (pid, mount, uts, ipc, net, cgroup), mounts the rootfs from the
// mounts it is given, sets up /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
// /sys, masked and read-only paths, pivots root, applies hostname, rlimits,
// user and groups, capabilities, no_new_privs and seccomp, and execs the
// user's process. It also joins running containers for exec, and holds the
// re-exec'd container init (Init) that cmd/berth-agent dispatches to.
//
// The contract is an OCI runtime spec (github.com/opencontainers/runtime-spec)
// built by the engine; only the fields the engine sets are honoured.
package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config configures a Runtime.
type Config struct {
	// StateDir holds per-container runtime state (sockets, pid files).
	StateDir string
	// Cgroups creates and controls the container's cgroup; nil runs without.
	Cgroups CgroupManager
}

// CgroupManager is what the runtime needs of guestagent/cgroups.
type CgroupManager interface {
	// Create makes the cgroup for a container and returns its path, or "" when
	// cgroups are unusable on this host.
	Create(id string, res *specs.LinuxResources) (string, error)
	Update(id string, res *specs.LinuxResources) error
	Freeze(id string) error
	Thaw(id string) error
	Pids(id string) ([]int, error)
	Delete(id string) error
}

// IOOptions say how the process's standard streams are wired.
type IOOptions struct {
	Terminal    bool    // allocate a pty; stdout and stderr are the pty
	OpenStdin   bool    // give the process a stdin pipe (else /dev/null)
	ConsoleSize [2]uint // height, width for the pty; zero leaves the default
}

// ProcessIO is the engine's end of the process's streams. With a terminal
// only Console is set (read output, write input); otherwise Stdin (nil unless
// OpenStdin), Stdout and Stderr.
type ProcessIO struct {
	Console *os.File
	Stdin   io.WriteCloser
	Stdout  io.ReadCloser
	Stderr  io.ReadCloser
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code      int            // exit code, or 128+signal when killed
	Signal    syscall.Signal // nonzero when killed by a signal
	OOMKilled bool
}

// Runtime creates containers.
type Runtime struct {
	cfg Config

	mu      sync.Mutex
	filters map[string][]byte // compiled seccomp programs by profile
}

// New returns a Runtime; StateDir is created when missing.
func New(cfg Config) (*Runtime, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("runtime: StateDir is required")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("runtime: create state dir: %w", err)
	}
	return &Runtime{cfg: cfg}, nil
}

// RootfsMount is one mount that makes up the container's root filesystem
// (typically a single overlay), as returned by the snapshotter.
type RootfsMount struct {
	Type    string
	Source  string
	Options []string
}

// CreateOptions accompany a spec.
type CreateOptions struct {
	Rootfs []RootfsMount
	IO     IOOptions
	// Init runs a reaper as PID 1 with the user's process as its child
	// (docker run --init).
	Init bool
}

// InitCommand is the hidden berth-agent subcommand that runs Init.
const InitCommand = "runtime-init"

// ReaperName is the name under which berth-agent acts as the --init reaper
// (it is bind-mounted into containers as /sbin/docker-init).
const ReaperName = "docker-init"
