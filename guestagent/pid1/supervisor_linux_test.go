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
	r := startReaper(log)
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
