package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// How exec joins a container, without cgo:
//
// The engine re-executes the agent (InitCommand, mode exec) directly into
// the container's cgroup (clone3 with CLONE_INTO_CGROUP). That helper locks
// its main goroutine to its OS thread and calls unshare(CLONE_FS), so the
// thread has its own fs_struct, which setns(CLONE_NEWNS) requires of a
// multi-threaded process; it then joins the ipc, uts, net, pid, cgroup and
// finally mount namespaces of the container's init from /proc/PID/ns. All of
// that changes this one thread only. It resolves user, cwd and command in
// the container's root, switches the thread's credentials, capabilities,
// no_new_privs and seccomp, and forks the user's process from the same
// thread: the child inherits the thread's namespaces (the pid namespace
// only applies to children, which is why the helper forks), root,
// credentials and filter, and execs. The helper reports the child's pid,
// reaps it and reports its exit status, then exits; its Go runtime's other
// threads keep the helper's original identity and do nothing meanwhile.

// execJoins are the namespaces an exec joins, mount last: after it, the
// host's /proc is out of sight.
var execJoins = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET},
	{"pid", unix.CLONE_NEWPID}, {"cgroup", unix.CLONE_NEWCGROUP}, {"mnt", unix.CLONE_NEWNS},
}

// execInit is the helper's side, on the locked main thread.
func execInit(cfg *initConfig, syncFile *os.File) error {
	p := cfg.Process
	if p == nil {
		return errors.New("exec without a process")
	}
	fds := make([]int, 0, len(execJoins))
	for _, j := range execJoins {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", cfg.InitPid, j.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace of container init %d: %w", j.name, cfg.InitPid, err)
		}
		fds = append(fds, fd)
	}
	if p.OOMScoreAdj != nil {
		// Here /proc/self is still this helper; in the container's /proc it
		// is not (the helper is outside its pid namespace). The process
		// inherits the value.
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
		cp := *p
		cp.OOMScoreAdj = nil
		p = &cp
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	for i, j := range execJoins {
		if err := unix.Setns(fds[i], j.flag); err != nil {
			return fmt.Errorf("join %s namespace: %w", j.name, err)
		}
		unix.Close(fds[i])
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	pr, err := prepareProcess(p, cfg.Filter, false)
	if err != nil {
		return err
	}
	if _, err := unix.FcntlInt(fdSync, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("set close-on-exec on sync: %w", err)
	}
	if err := applyCreds(pr); err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	files := []uintptr{0, 1, 2}
	if cfg.Terminal {
		master, slave, _, err := openContainerPty(pr.user.UID)
		if err != nil {
			return err
		}
		if err := sendConsole(master); err != nil {
			return err
		}
		unix.Close(master)
		files = []uintptr{uintptr(slave), uintptr(slave), uintptr(slave)}
	}
	pid, err := syscall.ForkExec(pr.path, p.Args, &syscall.ProcAttr{
		Dir:   cwd,
		Env:   pr.env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: cfg.Terminal, Ctty: 0},
	})
	if err != nil {
		return fmt.Errorf("exec %s: %w", pr.path, err)
	}
	// Only the process may hold its streams open, so the engine sees EOF
	// when it (and what it started) is done.
	for fd := 0; fd <= 2; fd++ {
		unix.Close(fd)
	}
	if err := writeMsg(syncFile, syncMsg{Type: "pid", Pid: pid}); err != nil {
		unix.Kill(pid, unix.SIGKILL)
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	st := waitStatus(ws)
	writeMsg(syncFile, syncMsg{Type: "exit", Code: st.Code, Signal: int(st.Signal)})
	os.Exit(0)
	return nil
}

// Process is an exec'd process.
type Process struct {
	c        *Container
	pid      int
	helper   *child
	io       *ProcessIO
	console  *os.File
	waitOnce sync.Once
	status   ExitStatus
}

// Exec starts a process inside the running container, in all of its
// namespaces and its cgroup, with the process's user, env, cwd and
// capabilities (as spec.Process would give a new container).
func (c *Container) Exec(p *specs.Process, o IOOptions) (*Process, error) {
	if p == nil || len(p.Args) == 0 {
		return nil, errors.New("runtime: exec without a command")
	}
	if c.exited() {
		return nil, fmt.Errorf("runtime: container %s is not running", c.id)
	}
	if f, ok := c.r.cfg.Cgroups.(interface{ Frozen(string) (bool, error) }); ok && c.cgroup != "" {
		// The helper would freeze on arrival in the cgroup.
		if frozen, err := f.Frozen(c.id); err == nil && frozen {
			return nil, fmt.Errorf("runtime: container %s is paused", c.id)
		}
	}
	cgfd := -1
	if c.cgroup != "" {
		fd, err := unix.Open(c.cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("runtime: open cgroup %s: %w", c.cgroup, err)
		}
		defer unix.Close(fd)
		cgfd = fd
	}
	pio, err := newProcessIO(o)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if p.Capabilities == nil && c.spec.Process.Capabilities != nil {
		// Never more than the container has: without its own sets an exec
		// gets the container's, not the helper's full set.
		cp := *p
		cp.Capabilities = c.spec.Process.Capabilities
		p = &cp
	}
	cfg := &initConfig{Mode: modeExec, Process: p, InitPid: c.Pid(), Filter: c.filter, Terminal: o.Terminal}
	// The helper is registered before it can show up in the cgroup.
	c.mu.Lock()
	ch, err := startChild(cfg, pio, 0, cgfd, false)
	if err == nil {
		c.helpers[ch.cmd.Process.Pid] = true
	}
	c.mu.Unlock()
	if err != nil {
		pio.closeAll()
		return nil, fmt.Errorf("runtime: exec in %s: %w", c.id, err)
	}
	pio.closeChild()
	if pio.terminal {
		if pio.parent.Console, ch.dec, err = recvConsole(ch.sync); err == nil && pio.parent.Console != nil {
			err = setupConsole(pio.parent.Console, o.ConsoleSize)
		}
		if err != nil {
			ch.kill()
			c.forgetHelper(ch.cmd.Process.Pid)
			pio.closeAll()
			return nil, fmt.Errorf("runtime: exec in %s: %w", c.id, err)
		}
	}
	m, err := readMsg(ch.dec)
	if err != nil || m.Type != "pid" {
		ch.cmd.Wait()
		ch.sync.Close()
		c.forgetHelper(ch.cmd.Process.Pid)
		pio.closeAll()
		if err == nil && m.Type == "error" {
			return nil, errors.New(m.Error)
		}
		if err == nil || err == io.EOF {
			err = fmt.Errorf("exec helper exited: %s", ch.cmd.ProcessState)
		}
		return nil, fmt.Errorf("runtime: exec in %s: %w", c.id, err)
	}
	return &Process{c: c, pid: m.Pid, helper: ch, io: &pio.parent, console: pio.parent.Console}, nil
}

func (c *Container) forgetHelper(pid int) {
	c.mu.Lock()
	delete(c.helpers, pid)
	c.mu.Unlock()
}

// Pid of the process in the engine's pid namespace.
func (p *Process) Pid() int { return p.pid }

// IO is the engine's end of the process's streams.
func (p *Process) IO() *ProcessIO { return p.io }

// Wait blocks until the process exits. One caller only.
func (p *Process) Wait() ExitStatus {
	p.waitOnce.Do(func() {
		m, err := readMsg(p.helper.dec)
		p.helper.cmd.Wait()
		p.helper.sync.Close()
		p.c.forgetHelper(p.helper.cmd.Process.Pid)
		if err == nil && m.Type == "exit" {
			p.status = ExitStatus{Code: m.Code, Signal: syscall.Signal(m.Signal)}
		} else {
			// The helper died first (killed with the container).
			p.status = exitStatus(p.helper.cmd.ProcessState)
		}
	})
	return p.status
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := unix.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("runtime: signal exec process %d: %w", p.pid, err)
	}
	return nil
}

// Resize sets the pty size of the process.
func (p *Process) Resize(height, width uint) error { return resize(p.console, height, width) }
