package runtime

import (
	"strconv"
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
