package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/guestagent/link"
)

// fakeEngineEnv makes the test binary act as an engine that answers /_ping
// on the socket named by the variable.
const fakeEngineEnv = "BERTH_PID1_TEST_FAKE_ENGINE"

func TestMain(m *testing.M) {
	if sock := os.Getenv(fakeEngineEnv); sock != "" {
		fakeEngine(sock)
		return
	}
	os.Exit(m.Run())
}

func fakeEngine(sock string) {
	args, held, err := HeldEngineArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if held && len(args) <= 1 {
		os.Exit(0) // abandoned
	}
	for i, a := range args {
		// --record FILE: write the arguments and whether the start was held.
		if a == "--record" && i+1 < len(args) {
			_ = os.WriteFile(args[i+1], []byte(fmt.Sprintf("held=%v %s", held, strings.Join(args, " "))), 0o644)
		}
	}
	for _, a := range args {
		if a == "--fail" {
			fmt.Fprintln(os.Stderr, `level=ERROR msg="bad configuration for the test"`)
			fmt.Fprintln(os.Stderr, "bye")
			os.Exit(3)
		}
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			fmt.Fprint(w, "OK")
			return
		}
		http.NotFound(w, r)
	})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}

// testReaper is the one reaper of the test process: a reaper waits for
// every child, so two would take each other's.
var testReaper = sync.OnceValue(func() *reaper { return startReaper(slog.New(slog.DiscardHandler)) })

// TestSupervisorRestartsEngine runs a fake engine under the supervisor,
// kills it, sees it restarted and ready again, then stops it.
func TestSupervisorRestartsEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.Setenv(fakeEngineEnv, sock)
	defer os.Unsetenv(fakeEngineEnv)
	log := slog.New(slog.DiscardHandler)
	r := testReaper()
	s := newSupervisor(log, r, []string{exe, "-test.run=^$"}, sock)
	// The child's environment is the supervisor's fixed one; pass the
	// variable through it.
	s.env = append(s.env, fakeEngineEnv+"="+sock)
	if got := s.state(); got != link.EngineStarting {
		t.Fatalf("state before start = %s", got)
	}
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !s.waitReady(ctx) {
		t.Fatal("engine never answered /_ping")
	}
	if got := s.state(); got != link.EngineReady {
		t.Fatalf("state = %s, want ready", got)
	}
	first := s.currentPid()
	if err := unix.Kill(first, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pid := s.currentPid()
		if pid != 0 && pid != first && s.state() == link.EngineReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not restarted: pid %d state %s", pid, s.state())
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := s.currentPid()
	s.stop(10 * time.Second)
	if err := unix.Kill(second, 0); err == nil {
		t.Error("engine still running after stop")
	}
	select {
	case <-s.stopped:
	case <-time.After(10 * time.Second):
		t.Error("supervision loop still running after stop")
	}
}

// TestDevNullOutlivesCollection: the engine's stdin stays open after the
// collector runs (it once was finalized, and the next restart failed with
// EBADF).
func TestDevNullOutlivesCollection(t *testing.T) {
	fd := devNull()
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		t.Fatalf("fd %d after a collection: %v", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Fatalf("fd %d is no longer /dev/null (mode %o, device %d:%d)", fd, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
}

// TestSupervisorRestartWithArgs: a restart asked for runs the engine with
// its new command at once; a run that exits is reported with its status
// and its error line, and the next restart brings a good run back.
func TestSupervisorRestartWithArgs(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	r := testReaper()
	good := []string{exe, "-test.run=^$"}
	s := newSupervisor(log, r, good, sock)
	s.env = append(s.env, fakeEngineEnv+"="+sock)
	s.start()
	defer s.stop(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !s.waitReady(ctx) {
		t.Fatal("engine never answered /_ping")
	}
	gen := s.restart(append(good[:len(good):len(good)], "--fail"), 10*time.Second)
	err = s.awaitRun(ctx, gen)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "bad configuration for the test") {
		t.Fatalf("awaitRun after a failing restart = %v", err)
	}
	gen = s.restart(good, 10*time.Second)
	if err := s.awaitRun(ctx, gen); err != nil {
		t.Fatalf("awaitRun after a good restart = %v", err)
	}
	if s.state() != link.EngineReady {
		t.Fatalf("state = %s", s.state())
	}
}

// TestReaperRun runs a program to its end through the reaper, with its
// output and exit status.
func TestReaperRun(t *testing.T) {
	r := testReaper()
	out, err := r.run(context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	if string(out) != "out\nerr\n" {
		t.Fatalf("out = %q", out)
	}
	if out, err := r.run(context.Background(), "true"); err != nil || len(out) != 0 {
		t.Fatalf("true: %q %v", out, err)
	}
}

// TestSupervisorHeldStart: an engine started ahead of its arguments gets
// them on the first run, runs in that same process, and answers; an engine
// that is never released, or whose command changed, is ended and (for the
// change) replaced by a fresh start.
func TestSupervisorHeldStart(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	r := testReaper()
	newSup := func(t *testing.T) (*supervisor, string) {
		sock := filepath.Join(t.TempDir(), "docker.sock")
		s := newSupervisor(log, r, nil, sock)
		s.env = append(s.env, fakeEngineEnv+"="+sock)
		return s, sock
	}
	ready := func(t *testing.T, s *supervisor) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !s.waitReady(ctx) {
			t.Fatal("engine never answered /_ping")
		}
	}

	t.Run("released", func(t *testing.T) {
		s, _ := newSup(t)
		if err := s.prestart(exe); err != nil {
			t.Fatal(err)
		}
		heldPid := s.held.pid
		record := filepath.Join(t.TempDir(), "args")
		s.argv = []string{exe, "engine", "--record", record, "--data-root", "/x y"}
		s.start()
		defer s.stop(10 * time.Second)
		ready(t, s)
		if got := s.currentPid(); got != heldPid {
			t.Errorf("running engine pid %d, want the held one %d", got, heldPid)
		}
		b, err := os.ReadFile(record)
		if err != nil {
			t.Fatal(err)
		}
		if want := "held=true engine --record " + record + " --data-root /x y"; string(b) != want {
			t.Errorf("engine saw %q, want %q", b, want)
		}
	})

	t.Run("command changed", func(t *testing.T) {
		s, _ := newSup(t)
		if err := s.prestart(exe); err != nil {
			t.Fatal(err)
		}
		heldPid := s.held.pid
		record := filepath.Join(t.TempDir(), "args")
		s.argv = []string{exe, "-test.run=^$", "--record", record}
		s.start()
		defer s.stop(10 * time.Second)
		ready(t, s)
		if got := s.currentPid(); got == heldPid {
			t.Error("the held engine runs a command it was not started for")
		}
		if err := unix.Kill(heldPid, 0); err == nil {
			t.Error("the held engine was not ended")
		}
		if b, _ := os.ReadFile(record); !strings.HasPrefix(string(b), "held=false ") {
			t.Errorf("fresh engine recorded %q", b)
		}
	})

	t.Run("never released", func(t *testing.T) {
		s, _ := newSup(t)
		if err := s.prestart(exe); err != nil {
			t.Fatal(err)
		}
		heldPid := s.held.pid
		s.stop(time.Second)
		s.start()
		select {
		case <-s.stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("supervision loop still running after stop")
		}
		if err := unix.Kill(heldPid, 0); err == nil {
			t.Error("the held engine outlived the supervisor")
		}
	})
}
