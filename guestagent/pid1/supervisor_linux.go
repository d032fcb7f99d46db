package pid1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
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

// run runs a program (found in PATH) to its end through the reaper, with
// its output, as exec.Cmd.CombinedOutput would; ctx ending kills it.
func (r *reaper) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	attr := &syscall.ProcAttr{Dir: "/", Env: os.Environ(), Files: []uintptr{devNull(), pw.Fd(), pw.Fd()}}
	pid, exited, err := r.start(append([]string{path}, args...), attr)
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	outCh := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		outCh <- b
	}()
	var ws unix.WaitStatus
	select {
	case ws = <-exited:
	case <-ctx.Done():
		_ = unix.Kill(pid, unix.SIGKILL)
		ws = <-exited
	}
	out := <-outCh
	if ws.ExitStatus() != 0 || ws.Signaled() {
		return out, fmt.Errorf("%s: exit status %d", name, ws.ExitStatus())
	}
	return out, nil
}

// supervisor runs the engine, restarts it when it dies, and tracks whether
// it answers /_ping.
type supervisor struct {
	log    *slog.Logger
	reaper *reaper
	sock   string // the engine's API socket, pinged for readiness
	env    []string

	mu       sync.Mutex
	argv     []string
	st       string
	pid      int
	runDone  chan struct{} // closed when the current engine process has exited
	stopping bool
	readyCh  chan struct{}
	stopped  chan struct{}
	// Each run of the engine has a generation; readyGen and exitGen are
	// the last that answered /_ping and the last that exited (exitWhy
	// says how, with the end of its log).
	gen, readyGen, exitGen int
	exitWhy                string
	// restartNow skips the backoff once: a restart was asked for.
	restartNow bool
	kick       chan struct{}
	// held is the engine process started ahead (prestart), waiting for
	// its arguments; the loop's first run takes it.
	held *engineRun
}

// engineRun is one started engine process: its pid, its exit, the end of
// its log, and, for a held start, the pipe its arguments go through.
type engineRun struct {
	argv0  string
	pid    int
	exited <-chan unix.WaitStatus
	tail   *lineTail
	args   *os.File
}

// spawn starts argv as the engine: a session leader whose log goes to the
// console through a pipe pid1 keeps, in the engine cgroup when there is
// one. held starts "argv[0] engine" waiting on descriptor 3 for the rest.
func (s *supervisor) spawn(argv []string, held bool) (*engineRun, error) {
	errOut := os.Stderr.Fd()
	tail := &lineTail{max: 8}
	pr, pw, perr := os.Pipe()
	if perr == nil {
		errOut = pw.Fd()
		go tail.copy(os.Stderr, pr)
	}
	defer func() {
		if pw != nil {
			pw.Close()
		}
	}()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   s.env,
		Files: []uintptr{devNull(), os.Stdout.Fd(), errOut},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	var argsR, argsW *os.File
	if held {
		var err error
		if argsR, argsW, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("engine arguments pipe: %w", err)
		}
		defer argsR.Close()
		attr.Files = append(attr.Files, argsR.Fd())
		attr.Env = append(append([]string(nil), s.env...), EngineArgsFDEnv+"=3")
		argv = argv[:2]
	}
	cgfd, cgerr := openEngineCgroup()
	if cgerr == nil {
		attr.Sys.UseCgroupFD = true
		attr.Sys.CgroupFD = cgfd
		defer unix.Close(cgfd)
	}
	pid, exited, err := s.reaper.start(argv, attr)
	if err != nil {
		if argsW != nil {
			argsW.Close()
		}
		return nil, err
	}
	return &engineRun{argv0: argv[0], pid: pid, exited: exited, tail: tail, args: argsW}, nil
}

// prestart starts the engine binary ahead of its arguments, so that its
// start-up (the runtime and package initialisation, a few hundred
// milliseconds under emulation) overlaps the rest of the boot; the first
// run of the loop hands it its arguments.
func (s *supervisor) prestart(bin string) error {
	r, err := s.spawn([]string{bin, "engine"}, true)
	if err != nil {
		return fmt.Errorf("prestart engine %s: %w", bin, err)
	}
	s.mu.Lock()
	s.held = r
	s.mu.Unlock()
	return nil
}

// release hands a held engine its arguments and moves it into the engine
// cgroup (made after it started). A nil run, or one started for another
// binary, returns nil with no error: the caller starts a fresh one.
func (r *engineRun) release(log *slog.Logger, argv []string) *engineRun {
	if r == nil {
		return nil
	}
	abandon := func(why error) *engineRun {
		log.Warn("berth: held engine abandoned; starting a new one", "err", why)
		r.abandon()
		return nil
	}
	if len(argv) < 2 || argv[0] != r.argv0 || argv[1] != "engine" {
		return abandon(fmt.Errorf("the engine's command is now %q", argv))
	}
	if err := joinEngineCgroup(r.pid); err != nil {
		log.Warn("berth: engine cgroup", "err", err)
	}
	_, err := r.args.Write([]byte(strings.Join(argv[2:], "\x00")))
	if cerr := r.args.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return abandon(fmt.Errorf("send the engine its arguments: %w", err))
	}
	return r
}

// abandon ends a held engine that will not get its arguments.
func (r *engineRun) abandon() {
	r.args.Close()
	_ = unix.Kill(r.pid, unix.SIGKILL)
	<-r.exited
}

func newSupervisor(log *slog.Logger, r *reaper, argv []string, sock string) *supervisor {
	return &supervisor{log: log, reaper: r, argv: argv, sock: sock, st: link.EngineStarting,
		env:     []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"},
		readyCh: make(chan struct{}), stopped: make(chan struct{}), kick: make(chan struct{}, 1)}
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
			held := s.held
			s.held = nil
			s.mu.Unlock()
			if held != nil {
				held.abandon()
			}
			return
		}
		s.mu.Unlock()
		began := time.Now()
		_ = os.Remove(s.sock)
		s.mu.Lock()
		argv, held := s.argv, s.held
		s.held = nil
		s.mu.Unlock()
		r := held.release(s.log, argv)
		var err error
		if r == nil {
			r, err = s.spawn(argv, false)
		}
		if err != nil {
			s.log.Error("berth: start engine", "argv", argv, "err", err)
			s.setState(link.EngineFailed)
			time.Sleep(5 * time.Second)
			continue
		}
		pid, exited, tail := r.pid, r.exited, r.tail
		runDone := make(chan struct{})
		s.mu.Lock()
		s.gen++
		gen := s.gen
		s.pid, s.runDone = pid, runDone
		s.mu.Unlock()
		s.setState(link.EngineStarting)
		ctx, cancel := context.WithCancel(context.Background())
		go s.pingUntilReady(ctx, gen)
		ws := <-exited
		close(runDone)
		cancel()
		tail.wait()
		why := fmt.Sprintf("exited with status %d", ws.ExitStatus())
		if ws.Signaled() {
			why = fmt.Sprintf("killed by %s", ws.Signal())
		}
		if last := tail.String(); last != "" {
			why += ": " + last
		}
		s.mu.Lock()
		stopping, asked := s.stopping, s.restartNow
		s.restartNow = false
		s.pid = 0
		s.exitGen, s.exitWhy = gen, why
		s.mu.Unlock()
		if stopping {
			return
		}
		if asked {
			s.log.Info("berth: engine restarting as asked")
			failures, backoff = 0, 500*time.Millisecond
			continue
		}
		s.log.Error("berth: engine "+why+"; restarting", "status", ws.ExitStatus())
		if time.Since(began) > time.Minute {
			failures, backoff = 0, 500*time.Millisecond
		}
		failures++
		if failures >= 5 {
			s.setState(link.EngineFailed)
		} else {
			s.setState(link.EngineStarting)
		}
		select {
		case <-time.After(backoff):
		case <-s.kick:
			failures, backoff = 0, 500*time.Millisecond
			continue
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// restart makes the next run of the engine use argv, and ends the current
// one (SIGTERM, then SIGKILL after grace) for the loop to start it again at
// once; an engine waiting to be restarted after a failure starts at once.
// It returns the generation of the run it ended, for awaitRun.
func (s *supervisor) restart(argv []string, grace time.Duration) int {
	s.mu.Lock()
	s.argv = argv
	pid, exited, gen := s.pid, s.runDone, s.gen
	if pid != 0 {
		s.restartNow = true
	}
	s.mu.Unlock()
	if pid == 0 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
		return gen
	}
	_ = unix.Kill(pid, unix.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		s.log.Warn("berth: engine did not stop in time; killing it", "grace", grace)
		_ = unix.Kill(pid, unix.SIGKILL)
		<-exited
	}
	return gen
}

// awaitRun waits for the first run after generation gen to answer /_ping
// (nil) or to exit (an error saying how, with the end of its log).
func (s *supervisor) awaitRun(ctx context.Context, gen int) error {
	for {
		s.mu.Lock()
		ready, exited, why := s.readyGen > gen, s.exitGen > gen, s.exitWhy
		s.mu.Unlock()
		switch {
		case ready:
			return nil
		case exited:
			return errors.New(why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the engine did not answer: %w", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// lineTail copies a stream and keeps its last lines.
type lineTail struct {
	max  int
	mu   sync.Mutex
	buf  []string
	part []byte
	done chan struct{}
}

func (t *lineTail) copy(w io.Writer, r *os.File) {
	t.mu.Lock()
	t.done = make(chan struct{})
	t.mu.Unlock()
	defer close(t.done)
	defer r.Close()
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		if n > 0 {
			w.Write(b[:n])
			t.add(b[:n])
		}
		if err != nil {
			return
		}
	}
}

func (t *lineTail) add(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.part[:i])); line != "" {
			t.buf = append(t.buf, line)
			if len(t.buf) > t.max {
				t.buf = t.buf[len(t.buf)-t.max:]
			}
		}
		t.part = t.part[i+1:]
	}
	if len(t.part) > 64<<10 {
		t.part = t.part[:0]
	}
}

// wait returns once the stream has ended (the engine and whatever it left
// holding the pipe are gone), or after a second.
func (t *lineTail) wait() {
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// String is the last line that says what went wrong: the last at error
// level, else the last line.
func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.buf) - 1; i >= 0; i-- {
		if strings.Contains(t.buf[i], "level=ERROR") || strings.HasPrefix(t.buf[i], "berth-agent:") {
			return t.buf[i]
		}
	}
	if len(t.buf) == 0 {
		return ""
	}
	return t.buf[len(t.buf)-1]
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
func (s *supervisor) pingUntilReady(ctx context.Context, gen int) {
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
				s.readyGen = max(s.readyGen, gen)
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
