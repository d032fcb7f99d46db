package pid1

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/guestagent/link"
)

// reaper waits for every child of PID 1, orphans included, and tells the
// supervisor when the engine exits. Once it runs, nothing else in pid1 may
// wait for a child (exec.Cmd.Wait would lose the race).
type reaper struct {
	log     *slog.Logger
	mu      sync.Mutex
	watched map[int]chan unix.WaitStatus
}

func startReaper(log *slog.Logger) *reaper {
	r := &reaper{log: log, watched: map[int]chan unix.WaitStatus{}}
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		r.reap()
		for range ch {
			r.reap()
		}
	}()
	return r
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.watched[pid]; ok {
			delete(r.watched, pid)
			ch <- ws
		}
	}
}

// start starts argv with the reaper's lock held, so its exit cannot be
// reaped before it is watched.
func (r *reaper) start(argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.watched[pid] = ch
	return pid, ch, nil
}

// supervisor runs the engine, restarts it when it dies, and tracks whether
// it answers /_ping.
type supervisor struct {
	log    *slog.Logger
	reaper *reaper
	argv   []string
	sock   string // the engine's API socket, pinged for readiness
	env    []string

	mu       sync.Mutex
	st       string
	pid      int
	runDone  chan struct{} // closed when the current engine process has exited
	stopping bool
	readyCh  chan struct{}
	stopped  chan struct{}
}

func newSupervisor(log *slog.Logger, r *reaper, argv []string, sock string) *supervisor {
	return &supervisor{log: log, reaper: r, argv: argv, sock: sock, st: link.EngineStarting,
		env:     []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"},
		readyCh: make(chan struct{}), stopped: make(chan struct{})}
}

func (s *supervisor) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *supervisor) setState(st string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = st
}

// currentPid is the running engine's pid, 0 between runs.
func (s *supervisor) currentPid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// start launches the supervision loop.
func (s *supervisor) start() {
	go s.loop()
}

func (s *supervisor) loop() {
	defer close(s.stopped)
	backoff := 500 * time.Millisecond
	failures := 0
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		began := time.Now()
		_ = os.Remove(s.sock)
		attr := &syscall.ProcAttr{
			Dir:   "/",
			Env:   s.env,
			Files: []uintptr{devNull(), os.Stdout.Fd(), os.Stderr.Fd()},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		}
		cgfd, cgerr := openEngineCgroup()
		if cgerr == nil {
			attr.Sys.UseCgroupFD = true
			attr.Sys.CgroupFD = cgfd
		}
		pid, exited, err := s.reaper.start(s.argv, attr)
		if cgerr == nil {
			unix.Close(cgfd)
		}
		if err != nil {
			s.log.Error("berth: start engine", "argv", s.argv, "err", err)
			s.setState(link.EngineFailed)
			time.Sleep(5 * time.Second)
			continue
		}
		runDone := make(chan struct{})
		s.mu.Lock()
		s.pid, s.runDone = pid, runDone
		s.mu.Unlock()
		s.setState(link.EngineStarting)
		ctx, cancel := context.WithCancel(context.Background())
		go s.pingUntilReady(ctx)
		ws := <-exited
		close(runDone)
		cancel()
		s.mu.Lock()
		stopping := s.stopping
		s.pid = 0
		s.mu.Unlock()
		if stopping {
			return
		}
		if ws.Signaled() {
			s.log.Error("berth: engine killed; restarting", "signal", ws.Signal())
		} else {
			s.log.Error("berth: engine exited; restarting", "status", ws.ExitStatus())
		}
		if time.Since(began) > time.Minute {
			failures, backoff = 0, 500*time.Millisecond
		}
		failures++
		if failures >= 5 {
			s.setState(link.EngineFailed)
		} else {
			s.setState(link.EngineStarting)
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 30*time.Second)
	}
}

// nullFile is the engine's stdin. It stays referenced: an *os.File the
// collector finalizes closes its descriptor, and a restart after that
// failed with EBADF.
var nullFile *os.File

func devNull() uintptr {
	if nullFile == nil {
		f, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			return os.Stdin.Fd()
		}
		nullFile = f
	}
	return nullFile.Fd()
}

// pingUntilReady polls the engine's /_ping until it answers 200.
func (s *supervisor) pingUntilReady(ctx context.Context) {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.sock)
		}},
	}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		resp, err := client.Get("http://engine/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.setState(link.EngineReady)
				s.mu.Lock()
				select {
				case <-s.readyCh:
				default:
					close(s.readyCh)
				}
				s.mu.Unlock()
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// waitReady waits until the engine has answered /_ping once.
func (s *supervisor) waitReady(ctx context.Context) bool {
	select {
	case <-s.readyCh:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop sends SIGTERM to the engine, waits up to grace, then kills it.
func (s *supervisor) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	pid, exited := s.pid, s.runDone
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	_ = unix.Kill(pid, unix.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		s.log.Warn("berth: engine did not stop in time; killing it", "grace", grace)
		_ = unix.Kill(pid, unix.SIGKILL)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
		}
	}
}

// spawnShell starts a process of the shell service (link.Shell) through the
// reaper: a session leader on tty, in /root.
func (g *guest) spawnShell(argv, env []string, tty *os.File) (link.ShellProcess, error) {
	attr := &syscall.ProcAttr{
		Dir:   "/root",
		Env:   env,
		Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	}
	pid, exited, err := g.reaper.start(argv, attr)
	if err != nil {
		return link.ShellProcess{}, err
	}
	code := make(chan int, 1)
	go func() {
		ws := <-exited
		switch {
		case ws.Signaled():
			code <- 128 + int(ws.Signal())
		default:
			code <- ws.ExitStatus()
		}
	}()
	return link.ShellProcess{
		Exited: code,
		Signal: func(sig syscall.Signal) { syscall.Kill(-pid, sig) },
	}, nil
}
