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
	"io"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// errNotImplemented marks parts of the contract that are not written yet.
var errNotImplemented = errors.New("runtime: not implemented")

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
}

// New returns a Runtime.
func New(cfg Config) (*Runtime, error) {
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

// Container is a created container: namespaces and rootfs exist, the user's
// process has been resolved (so a missing or non-executable command fails
// here with an error that says so), and waits in the init for Start.
type Container struct{}

// Create sets up the container and stops just before exec. The returned
// error for a command that cannot be found or executed matches runc's
// wording ("exec: \"foo\": executable file not found in $PATH"), so the
// docker CLI maps it to exit status 127 or 126.
func (r *Runtime) Create(id string, spec *specs.Spec, opts CreateOptions) (*Container, error) {
	return nil, errNotImplemented
}

// Start execs the user's process.
func (c *Container) Start() error { return errNotImplemented }

// Pid is the container's init in the engine's pid namespace.
func (c *Container) Pid() int { return 0 }

// IO is the engine's end of the container process's streams.
func (c *Container) IO() *ProcessIO { return nil }

// Wait blocks until the container's init exits. One caller only.
func (c *Container) Wait() ExitStatus { return ExitStatus{} }

// Signal sends sig to the container's init.
func (c *Container) Signal(sig syscall.Signal) error { return errNotImplemented }

// Pause freezes every process of the container (cgroup freezer).
func (c *Container) Pause() error { return errNotImplemented }

// Resume thaws the container.
func (c *Container) Resume() error { return errNotImplemented }

// Update applies new resource limits.
func (c *Container) Update(res *specs.LinuxResources) error { return errNotImplemented }

// Processes lists the pids (engine's pid namespace) in the container.
func (c *Container) Processes() ([]int, error) { return nil, errNotImplemented }

// Resize sets the pty size of the container's init.
func (c *Container) Resize(height, width uint) error { return errNotImplemented }

// Exec starts a process inside the running container, in all of its
// namespaces and its cgroup, with the process's user, env, cwd and
// capabilities (as spec.Process would give a new container).
func (c *Container) Exec(p *specs.Process, io IOOptions) (*Process, error) {
	return nil, errNotImplemented
}

// Delete releases what the container holds after its init exited: state
// dir, cgroup. The rootfs mount goes with the mount namespace.
func (c *Container) Delete() error { return errNotImplemented }

// Process is an exec'd process.
type Process struct{}

// Pid of the process in the engine's pid namespace.
func (p *Process) Pid() int { return 0 }

// IO is the engine's end of the process's streams.
func (p *Process) IO() *ProcessIO { return nil }

// Wait blocks until the process exits. One caller only.
func (p *Process) Wait() ExitStatus { return ExitStatus{} }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return errNotImplemented }

// Resize sets the pty size of the process.
func (p *Process) Resize(height, width uint) error { return errNotImplemented }

// Init is the re-exec'd container init (cmd/berth-agent dispatches to it
// when started as the runtime's child); it never returns on success.
func Init() error { return errNotImplemented }

// InitCommand is the hidden berth-agent subcommand that runs Init.
const InitCommand = "runtime-init"

// ReaperName is the name under which berth-agent acts as the --init reaper
// (it is bind-mounted into containers as /sbin/docker-init).
const ReaperName = "docker-init"

// Reaper runs args as a child, forwards signals to it, reaps every zombie,
// and returns the child's exit status (128+signal when killed).
func Reaper(args []string) int { return 127 }
