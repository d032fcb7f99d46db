package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestReaperSignalRightAfterStart signals a container under --init as soon
// as Start returns: the reaper must already forward it, so the child dies
// of it and the container exits with 128+signal.
func TestReaperSignalRightAfterStart(t *testing.T) {
	e := newEnv(t)
	requireStaticSelf(t)
	tests := []struct {
		sig  syscall.Signal
		want int
	}{
		{syscall.SIGTERM, 143},
		{syscall.SIGHUP, 129},
		{syscall.SIGINT, 130},
	}
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			// Repeated, as the window after start is short.
			for i := 0; i < 10; i++ {
				id := "reapsig" + strconv.Itoa(int(tt.sig)) + "-" + strconv.Itoa(i)
				c, err := e.rt.Create(id, testSpec("sleep", "30"), CreateOptions{Rootfs: e.rootfs(t, id), Init: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				if err := c.Signal(tt.sig); err != nil {
					t.Fatal(err)
				}
				st := c.Wait()
				c.Delete()
				if st.Code != tt.want {
					t.Fatalf("run %d: exit status %+v, want code %d", i, st, tt.want)
				}
			}
		})
	}
}

// TestInitAfterBinaryReplaced removes the running binary (as an upgrade
// replaces it) before a container with --init starts: the reaper bound at
// /sbin/docker-init must still be the running one. The test runs itself
// from a copy, which it deletes.
func TestInitAfterBinaryReplaced(t *testing.T) {
	requireRoot(t)
	requireStaticSelf(t)
	if os.Getenv("BERTH_TEST_DELETE_SELF") == "1" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(self); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t)
		out, errOut, st := e.run(t, testSpec("sh", "-c", "cat /proc/1/comm"), CreateOptions{Init: true})
		if st.Code != 0 || out != ReaperName+"\n" {
			t.Fatalf("exit %+v: %q %q", st, out, errOut)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "runtime.test")
	if err := os.WriteFile(cp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cp, "-test.run=^TestInitAfterBinaryReplaced$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_TEST_DELETE_SELF=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("run with the binary removed: %v\n%s", err, out)
	}
}
