package runtime

import (
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// leakFD opens /dev/null at fd (and at whatever number open picks) without
// close-on-exec, as a shell that started the engine may leave them, and
// returns both numbers.
func leakFD(t *testing.T, fd int) []int {
	t.Helper()
	low, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup3(low, fd, 0); err != nil {
		unix.Close(low)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(low); unix.Close(fd) })
	return []int{low, fd}
}

// fdList parses the output of `ls /proc/$$/fd`.
func fdList(out string) []int {
	var fds []int
	for _, f := range strings.Fields(out) {
		if n, err := strconv.Atoi(f); err == nil {
			fds = append(fds, n)
		}
	}
	return fds
}

func TestNoInheritedDescriptors(t *testing.T) {
	e := newEnv(t)
	leaked := leakFD(t, 251)
	script := `ls /proc/$$/fd`
	check := func(t *testing.T, out string) {
		t.Helper()
		for _, fd := range fdList(out) {
			for _, l := range leaked {
				if fd == l {
					t.Errorf("descriptor %d of the engine is open in the container: %q", fd, out)
				}
			}
		}
	}
	tests := []struct {
		name string
		init bool
	}{
		{"container", false},
		{"container under init", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.init {
				requireStaticSelf(t)
			}
			out, _, st := e.run(t, testSpec("sh", "-c", script), CreateOptions{Init: tt.init})
			if st.Code != 0 {
				t.Fatalf("exit %+v: %s", st, out)
			}
			check(t, out)
		})
	}
	t.Run("exec", func(t *testing.T) {
		c := e.started(t, "fdexec", testSpec("sleep", "1000"), CreateOptions{})
		for _, terminal := range []bool{false, true} {
			p, err := c.Exec(&specs.Process{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}}, IOOptions{Terminal: terminal})
			if err != nil {
				t.Fatal(err)
			}
			r := p.IO().Stdout
			if terminal {
				r = p.IO().Console
			}
			out := readAll(t, r)
			if st := p.Wait(); st.Code != 0 {
				t.Fatalf("terminal=%v: exit %+v: %s", terminal, st, out)
			}
			check(t, out)
		}
	})
}

func TestCloexecFrom(t *testing.T) {
	tests := []struct {
		name string
		f    func(int) error
	}{
		{"close_range", cloexecFrom},
		{"listed", cloexecListed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds := leakFD(t, 250)
			if err := tt.f(fds[0]); err != nil {
				t.Fatal(err)
			}
			for _, fd := range fds {
				flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err != nil {
					t.Fatal(err)
				}
				if flags&unix.FD_CLOEXEC == 0 {
					t.Errorf("descriptor %d is not close-on-exec", fd)
				}
			}
		})
	}
}
