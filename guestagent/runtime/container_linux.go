package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/berthdesktop/berth/guestagent/runtime/seccomp"
	"github.com/creack/pty"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is a created container: namespaces and rootfs exist, the user's
// process has been resolved (so a missing or non-executable command fails
// here with an error that says so), and waits in the init for Start.
type Container struct {
	id       string
	r        *Runtime
	spec     *specs.Spec
	stateDir string
	cgroup   string // "" without cgroups
	filter   []byte // compiled seccomp program, nil for none
	cmd      *exec.Cmd
	sync     *os.File
	io       *ProcessIO
	console  *os.File

	waitOnce sync.Once
	done     chan struct{} // closed once the init is reaped
	status   ExitStatus

	mu      sync.Mutex
	started bool
	helpers map[int]bool // exec helpers, which live in the cgroup but are not the container's
}

// processIO is the two ends of a process's streams while it is started.
type processIO struct {
	parent        ProcessIO
	stdin, stdout *os.File // child ends
	stderr        *os.File
	terminal      bool
}

// closeChild closes the child's ends once it has them.
func (p *processIO) closeChild() {
	p.stdin.Close()
	if p.stdout != p.stdin {
		p.stdout.Close()
	}
	if p.stderr != nil {
		p.stderr.Close()
	}
}

// closeAll closes both ends (on failure).
func (p *processIO) closeAll() {
	p.closeChild()
	for _, c := range []io.Closer{p.parent.Console, p.parent.Stdin, p.parent.Stdout, p.parent.Stderr} {
		if c != nil && !isNilFile(c) {
			c.Close()
		}
	}
}

func isNilFile(c io.Closer) bool {
	f, ok := c.(*os.File)
	return ok && f == nil
}

// newProcessIO allocates a pty (whose slave is stdin, stdout and stderr) or
// pipes (stdin only with OpenStdin, else /dev/null).
func newProcessIO(o IOOptions) (*processIO, error) {
	p := &processIO{}
	if o.Terminal {
		// The child opens the pty in the container and sends the master;
		// until then its stdio is /dev/null.
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
		}
		p.stdin, p.stdout = f, f
		p.terminal = true
		return p, nil
	}
	fail := func(err error) (*processIO, error) {
		p.closeAll()
		return nil, err
	}
	if o.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("stdin pipe: %w", err))
		}
		p.stdin, p.parent.Stdin = r, w
	} else {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return fail(fmt.Errorf("open %s: %w", os.DevNull, err))
		}
		p.stdin = f
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stdout pipe: %w", err))
	}
	p.parent.Stdout, p.stdout = r, w
	r, w, err = os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stderr pipe: %w", err))
	}
	p.parent.Stderr, p.stderr = r, w
	return p, nil
}

// child is a started init or exec helper with its sync channel.
type child struct {
	cmd  *exec.Cmd
	sync *os.File
	dec  *json.Decoder
}

// startChild re-executes this binary as InitCommand with cfg, stdio from
// pio, the given clone flags and, when cgroupFD >= 0, directly inside that
// cgroup. extra are passed from fd 5 on.
func startChild(cfg *initConfig, pio *processIO, cloneflags uintptr, cgroupFD int, setsid bool, extra ...*os.File) (*child, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socketpair: %w", err)
	}
	parentSync, childSync := os.NewFile(uintptr(pair[0]), "sync"), os.NewFile(uintptr(pair[1]), "sync-child")
	defer childSync.Close()
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		parentSync.Close()
		return nil, fmt.Errorf("config pipe: %w", err)
	}
	defer cfgR.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"berth-agent", InitCommand},
		Env:        []string{},
		Stdin:      pio.stdin,
		Stdout:     pio.stdout,
		Stderr:     pio.stderr,
		ExtraFiles: append([]*os.File{cfgR, childSync}, extra...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneflags,
			Setsid:     setsid,
		},
	}
	if pio.stderr == nil {
		cmd.Stderr = pio.stdout
	}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	if err := cmd.Start(); err != nil {
		cfgW.Close()
		parentSync.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	c := &child{cmd: cmd, sync: parentSync, dec: json.NewDecoder(parentSync)}
	werr := json.NewEncoder(cfgW).Encode(cfg)
	cfgW.Close()
	if werr != nil {
		// The child died before reading; its own report says why.
		if m, err := readMsg(c.dec); err == nil && m.Type == "error" {
			werr = errors.New(m.Error)
		}
		c.kill()
		return nil, fmt.Errorf("send config: %w", werr)
	}
	return c, nil
}

// kill ends a child that failed and reaps it.
func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
	c.sync.Close()
}

// nsFlags returns the clone flags for the namespaces of s that are created
// (not joined by path).
func nsFlags(s *specs.Spec) (uintptr, error) {
	var f uintptr
	if s.Linux == nil {
		return 0, errors.New("a spec without a linux section has no namespaces")
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace:
			f |= unix.CLONE_NEWPID
		case specs.MountNamespace:
			f |= unix.CLONE_NEWNS
		case specs.UTSNamespace:
			f |= unix.CLONE_NEWUTS
		case specs.IPCNamespace:
			f |= unix.CLONE_NEWIPC
		case specs.NetworkNamespace:
			f |= unix.CLONE_NEWNET
		case specs.CgroupNamespace:
			f |= unix.CLONE_NEWCGROUP
		case specs.UserNamespace:
			return 0, errors.New("user namespaces are not supported")
		case specs.TimeNamespace:
			f |= unix.CLONE_NEWTIME
		default:
			return 0, fmt.Errorf("unknown namespace type %q", ns.Type)
		}
	}
	if f&unix.CLONE_NEWNS == 0 {
		return 0, errors.New("a container needs its own mount namespace")
	}
	return f, nil
}

func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("runtime: invalid container id %q", id)
	}
	return nil
}

// Create sets up the container and stops just before exec. The returned
// error for a command that cannot be found or executed matches runc's
// wording ("exec: \"foo\": executable file not found in $PATH"), so the
// docker CLI maps it to exit status 127 or 126.
func (r *Runtime) Create(id string, spec *specs.Spec, opts CreateOptions) (_ *Container, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if spec == nil || spec.Process == nil {
		return nil, errors.New("runtime: spec without a process")
	}
	flags, err := nsFlags(spec)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	c := &Container{id: id, r: r, spec: spec, stateDir: filepath.Join(r.cfg.StateDir, id), helpers: map[int]bool{}, done: make(chan struct{})}
	rootfsDir := filepath.Join(c.stateDir, "rootfs")
	if err := os.MkdirAll(rootfsDir, 0o711); err != nil {
		return nil, fmt.Errorf("runtime: create state of %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			c.cleanup()
		}
	}()
	var res *specs.LinuxResources
	if spec.Linux != nil {
		res = spec.Linux.Resources
	}
	cgfd := -1
	if r.cfg.Cgroups != nil {
		c.cgroup, err = r.cfg.Cgroups.Create(id, res)
		if err != nil {
			return nil, fmt.Errorf("runtime: cgroup of %s: %w", id, err)
		}
		if c.cgroup != "" {
			cgfd, err = unix.Open(c.cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("runtime: open cgroup %s: %w", c.cgroup, err)
			}
			defer unix.Close(cgfd)
		}
	}
	spec.Process.Terminal = opts.IO.Terminal
	pio, err := newProcessIO(opts.IO)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	// The init gets the compiled filter, not the profile.
	childSpec := *spec
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		if c.filter, err = r.compileSeccomp(profileFor(spec)); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		l := *spec.Linux
		l.Seccomp = nil
		childSpec.Linux = &l
	}
	cfg := &initConfig{Mode: modeCreate, Spec: &childSpec, Rootfs: opts.Rootfs, RootfsDir: rootfsDir, Init: opts.Init, Filter: c.filter}
	var extra []*os.File
	if opts.Init {
		// The reaper is the running binary: a detached bind mount of it,
		// made here in the engine's mount namespace, where its file is
		// (the container's init could not bind a file of another mount
		// namespace, and its path may be gone after an upgrade).
		fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			pio.closeAll()
			return nil, fmt.Errorf("runtime: bind the agent binary for --init: %w", err)
		}
		self := os.NewFile(uintptr(fd), "agent-binary")
		defer self.Close()
		extra = append(extra, self)
		cfg.ReaperFD = fdReaper
	}
	ch, err := startChild(cfg, pio, flags, cgfd, true, extra...)
	if err != nil {
		pio.closeAll()
		return nil, fmt.Errorf("runtime: create %s: %w", id, err)
	}
	pio.closeChild()
	if pio.terminal {
		if pio.parent.Console, ch.dec, err = recvConsole(ch.sync); err == nil && pio.parent.Console != nil {
			err = setupConsole(pio.parent.Console, opts.IO.ConsoleSize)
		}
		if err != nil {
			ch.kill()
			pio.closeAll()
			return nil, fmt.Errorf("runtime: create %s: %w", id, err)
		}
	}
	m, err := readMsg(ch.dec)
	if err != nil || m.Type != "ready" {
		ch.kill()
		pio.closeAll()
		if err == nil && m.Type == "error" {
			return nil, errors.New(m.Error)
		}
		if err == nil || err == io.EOF {
			err = fmt.Errorf("container init exited: %s", ch.cmd.ProcessState)
		}
		return nil, fmt.Errorf("runtime: create %s: %w", id, err)
	}
	c.cmd, c.sync, c.io, c.console = ch.cmd, ch.sync, &pio.parent, pio.parent.Console
	return c, nil
}

// profileFor returns the seccomp profile of spec. When that is the default
// profile of the default capabilities but the process has other ones
// (--cap-add, --cap-drop), it is the default profile for those, as dockerd
// builds it: CAP_SYS_ADMIN allows mount, CAP_SYS_PTRACE ptrace, and so on.
func profileFor(spec *specs.Spec) *specs.LinuxSeccomp {
	p := spec.Linux.Seccomp
	caps := spec.Process.Capabilities
	if caps == nil || slices.Equal(caps.Bounding, DefaultCapabilities) {
		return p
	}
	def := seccomp.Default(DefaultCapabilities, goruntime.GOARCH)
	a, err1 := json.Marshal(p)
	b, err2 := json.Marshal(def)
	if err1 != nil || err2 != nil || string(a) != string(b) {
		return p
	}
	return seccomp.Default(caps.Bounding, goruntime.GOARCH)
}

// compileSeccomp compiles a profile for this machine, once per distinct
// profile: containers mostly share the default one.
func (r *Runtime) compileSeccomp(p *specs.LinuxSeccomp) ([]byte, error) {
	key, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode seccomp profile: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.filters[string(key)]; ok {
		return f, nil
	}
	prog, err := seccomp.Compile(p, goruntime.GOARCH)
	if err != nil {
		return nil, err
	}
	f := encodeFilter(prog)
	if r.filters == nil || len(r.filters) >= 64 {
		r.filters = map[string][]byte{}
	}
	r.filters[string(key)] = f
	return f, nil
}

// cleanup undoes a failed Create.
func (c *Container) cleanup() {
	if c.r.cfg.Cgroups != nil && c.cgroup != "" {
		if err := c.r.cfg.Cgroups.Delete(c.id); err != nil {
			slog.Warn("runtime: remove cgroup", "container", c.id, "err", err)
		}
	}
	os.RemoveAll(c.stateDir)
}

// Start execs the user's process.
func (c *Container) Start() error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("runtime: container %s already started", c.id)
	}
	c.started = true
	c.mu.Unlock()
	defer c.sync.Close()
	if _, err := c.sync.Write([]byte{'g'}); err != nil {
		return fmt.Errorf("runtime: start %s: %w", c.id, err)
	}
	m, err := readMsg(json.NewDecoder(c.sync))
	switch {
	case err == io.EOF:
		return nil // exec closed the sync socket
	case err != nil:
		return fmt.Errorf("runtime: start %s: %w", c.id, err)
	case m.Type == "error":
		return errors.New(m.Error)
	}
	return fmt.Errorf("runtime: start %s: unexpected %q from init", c.id, m.Type)
}

// ID is the container's id.
func (c *Container) ID() string { return c.id }

// Pid is the container's init in the engine's pid namespace.
func (c *Container) Pid() int { return c.cmd.Process.Pid }

// CgroupPath is the container's cgroup directory, "" without cgroups.
func (c *Container) CgroupPath() string { return c.cgroup }

// IO is the engine's end of the container process's streams.
func (c *Container) IO() *ProcessIO { return c.io }

// oomReporter is what a CgroupManager may offer to tell OOM kills.
type oomReporter interface{ OOMKilled(id string) bool }

// Wait blocks until the container's init exits. One caller only.
func (c *Container) Wait() ExitStatus {
	c.waitOnce.Do(func() {
		c.cmd.Wait()
		st := exitStatus(c.cmd.ProcessState)
		if o, ok := c.r.cfg.Cgroups.(oomReporter); ok && c.cgroup != "" {
			st.OOMKilled = o.OOMKilled(c.id)
		}
		c.status = st
		close(c.done)
	})
	return c.status
}

func (c *Container) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func exitStatus(ps *os.ProcessState) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: 255}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{Code: ps.ExitCode()}
	}
	return waitStatus(ws)
}

func waitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Signal sends sig to the container's init.
func (c *Container) Signal(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("runtime: signal %s: %w", c.id, err)
	}
	return nil
}

func (c *Container) cgroups() (CgroupManager, error) {
	if c.r.cfg.Cgroups == nil || c.cgroup == "" {
		return nil, fmt.Errorf("runtime: container %s has no cgroup", c.id)
	}
	return c.r.cfg.Cgroups, nil
}

// Pause freezes every process of the container (cgroup freezer).
func (c *Container) Pause() error {
	cg, err := c.cgroups()
	if err != nil {
		return err
	}
	return cg.Freeze(c.id)
}

// Resume thaws the container.
func (c *Container) Resume() error {
	cg, err := c.cgroups()
	if err != nil {
		return err
	}
	return cg.Thaw(c.id)
}

// Update applies new resource limits.
func (c *Container) Update(res *specs.LinuxResources) error {
	cg, err := c.cgroups()
	if err != nil {
		return err
	}
	return cg.Update(c.id, res)
}

// Processes lists the pids (engine's pid namespace) in the container.
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroups()
	if err != nil {
		// Without a cgroup only the init is known.
		if !c.exited() {
			return []int{c.Pid()}, nil
		}
		return nil, nil
	}
	pids, err := cg.Pids(c.id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.DeleteFunc(pids, func(p int) bool { return c.helpers[p] }), nil
}

// Resize sets the pty size of the container's init.
func (c *Container) Resize(height, width uint) error {
	return resize(c.console, height, width)
}

func resize(console *os.File, height, width uint) error {
	if console == nil {
		return errors.New("runtime: process has no terminal")
	}
	if err := pty.Setsize(console, &pty.Winsize{Rows: uint16(height), Cols: uint16(width)}); err != nil {
		return fmt.Errorf("runtime: resize pty: %w", err)
	}
	return nil
}

// Delete releases what the container holds after its init exited: state
// dir, cgroup. The rootfs mount goes with the mount namespace.
func (c *Container) Delete() error {
	c.mu.Lock()
	neverStarted := !c.started
	if neverStarted {
		c.started = true
		c.sync.Close() // an init waiting for Start exits
	}
	c.mu.Unlock()
	if !c.exited() {
		c.cmd.Process.Kill()
		if neverStarted {
			c.Wait()
		}
	}
	var errs []error
	if c.r.cfg.Cgroups != nil && c.cgroup != "" {
		if err := c.r.cfg.Cgroups.Delete(c.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.stateDir); err != nil {
		errs = append(errs, fmt.Errorf("runtime: remove state of %s: %w", c.id, err))
	}
	return errors.Join(errs...)
}
