//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestExec checks docker exec: output, exit codes, user, workdir, env,
// detach, and that the process joins every namespace and the cgroup of
// the container with its capabilities.
func TestExec(t *testing.T) {
	e := needEngine(t)
	id := e.runDetached(t, "-e", "FROM_RUN=yes", "--hostname", "exechost", testImage, "sleep", "100000")
	tests := []struct {
		name   string
		args   []string // between "exec" and the container
		cmd    []string
		stdin  string
		code   int
		stdout string
	}{
		{name: "echo", cmd: []string{"echo", "hi"}, stdout: "hi\n"},
		{name: "exit code", cmd: []string{"sh", "-c", "exit 5"}, code: 5},
		{name: "not found", cmd: []string{"no-such-command"}, code: 127},
		{name: "not executable", cmd: []string{"/etc/passwd"}, code: 126},
		{name: "user by name", args: []string{"-u", "user"}, cmd: []string{"sh", "-c", "id -u; id -g"}, stdout: "1000\n1000\n"},
		{name: "user by id", args: []string{"-u", "4321:99"}, cmd: []string{"sh", "-c", "id -u; id -g"}, stdout: "4321\n99\n"},
		{name: "workdir", args: []string{"-w", "/tmp"}, cmd: []string{"pwd"}, stdout: "/tmp\n"},
		{name: "env", args: []string{"-e", "X=1"}, cmd: []string{"sh", "-c", `echo "$X $FROM_RUN"`}, stdout: "1 yes\n"},
		{name: "hostname", cmd: []string{"hostname"}, stdout: "exechost\n"},
		{name: "sees pid 1", cmd: []string{"cat", "/proc/1/cmdline"}, stdout: "sleep\x00100000\x00"},
		{name: "stdin", args: []string{"-i"}, cmd: []string{"cat"}, stdin: "piped\n", stdout: "piped\n"},
		{name: "same namespaces as pid 1", cmd: []string{"sh", "-c",
			`for n in pid mnt uts ipc net cgroup; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "$n differs"; done`},
			stdout: ""},
		{name: "same cgroup as pid 1", cmd: []string{"sh", "-c", `[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] || { cat /proc/self/cgroup /proc/1/cgroup; }`}, stdout: ""},
		{name: "same root as pid 1", cmd: []string{"sh", "-c", `[ -f /etc/passwd ] && [ "$(stat -c %i /)" = "$(stat -c %i /proc/1/root/)" ] && echo same`}, stdout: "same\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{"exec"}, tt.args...), id)
			args = append(args, tt.cmd...)
			var r result
			if tt.stdin != "" {
				r = e.docker(strings.NewReader(tt.stdin), args...)
			} else {
				r = e.docker(nil, args...)
			}
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%v", r.code, tt.code, r)
			}
			if tt.code == 0 && r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q\n%v", r.stdout, tt.stdout, r)
			}
		})
	}
	t.Run("security", func(t *testing.T) {
		st := parseStatus(e.ok(t, "exec", id, "cat", "/proc/self/status"))
		if st["CapEff"] != defaultCapEff || st["Seccomp"] != "2" {
			t.Errorf("exec: CapEff %q Seccomp %q, want %s and 2", st["CapEff"], st["Seccomp"], defaultCapEff)
		}
		st = parseStatus(e.ok(t, "exec", "-u", "user", id, "cat", "/proc/self/status"))
		if st["CapEff"] != "0000000000000000" {
			t.Errorf("exec -u user: CapEff %q, want 0", st["CapEff"])
		}
	})
	t.Run("detached", func(t *testing.T) {
		e.ok(t, "exec", "-d", id, "sh", "-c", "echo done > /tmp/detached")
		eventually(t, "detached exec wrote its file", func() (bool, string) {
			r := e.docker(nil, "exec", id, "cat", "/tmp/detached")
			return r.stdout == "done\n", r.String()
		})
	})
	t.Run("not running", func(t *testing.T) {
		stopped := e.create(t, testImage, "true")
		if code, r := e.code("exec", stopped, "true"); code == 0 {
			t.Errorf("exec into a created container succeeded\n%v", r)
		}
	})
	t.Run("tty", func(t *testing.T) {
		out, code := runPTY(t, e, []string{"exec", "-it", id, "sh", "-c", ttyScript + "; exit 4"}, "hello")
		if code != 4 {
			t.Errorf("exec -it exit %d, want 4; output %q", code, out)
		}
		for _, want := range []string{"size 40 100", "/dev/pts/", "got hello", "resized 30 80"} {
			if !strings.Contains(out, want) {
				t.Errorf("exec -it output %q lacks %q", out, want)
			}
		}
	})
}

// TestRunTTY runs containers with -t under a pseudo-terminal.
func TestRunTTY(t *testing.T) {
	e := needEngine(t)
	t.Run("run -it", func(t *testing.T) {
		out, code := runPTY(t, e, []string{"run", "-it", "--rm", testImage, "sh", "-c", ttyScript + "; exit 3"}, "hello")
		if code != 3 {
			t.Errorf("run -it exit %d, want 3; output %q", code, out)
		}
		for _, want := range []string{"size 40 100", "/dev/pts/0", "got hello", "resized 30 80"} {
			if !strings.Contains(out, want) {
				t.Errorf("run -it output %q lacks %q", out, want)
			}
		}
	})
	t.Run("run -t, logs of a tty container", func(t *testing.T) {
		id := e.runDetached(t, "-t", testImage, "sh", "-c", "echo out; echo err >&2")
		e.ok(t, "wait", id)
		r := e.docker(nil, "logs", id)
		// With a terminal both streams are the pty: all on stdout, with
		// the terminal's CRLF.
		if r.stdout != "out\r\nerr\r\n" || r.stderr != "" {
			t.Errorf("logs of a tty container: %v", r)
		}
	})
}

// ttyScript prints the terminal's size once the CLI has set it (it may
// arrive just after the process starts), the tty's name, "ready", then
// reads a line and echoes it back, then prints the size again once the
// resize that runPTY made before typing reached it.
const ttyScript = `i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); [ "$s" = "40 100" ] && break; i=$((i+1)); sleep 0.1; done; ` +
	`echo "size $s"; tty; echo ready; read x; echo "got $x"; ` +
	`i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); [ "$s" = "30 80" ] && break; i=$((i+1)); sleep 0.1; done; echo "resized $s"`

// runPTY runs the docker CLI on a 40x100 pseudo-terminal, waits for the
// line "ready", types input and Enter, resizes the terminal to 30x80, and
// returns everything printed and the exit status.
func runPTY(t *testing.T, e *engine, args []string, input string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", e.peerArgs(args)...)
	cmd.Env = append(e.env(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatalf("start docker under a pty: %v", err)
	}
	defer f.Close()
	var (
		mu    sync.Mutex
		out   bytes.Buffer
		ready = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		signalled := false
		for {
			n, err := f.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			if !signalled && strings.Contains(out.String(), "ready") {
				signalled = true
				close(ready)
			}
			mu.Unlock()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !isEIO(err) {
					t.Errorf("read pty: %v", err)
				}
				return
			}
		}
	}()
	select {
	case <-ready:
		if _, err := f.Write([]byte(input + "\r")); err != nil {
			t.Errorf("write to pty: %v", err)
		}
		// The CLI resizes the container's terminal on SIGWINCH, but only
		// once it has started watching for it, which may be after the
		// container printed "ready"; so the size changes (and signals)
		// until the script saw 30x80 or the CLI ended.
		go func() {
			for {
				mu.Lock()
				seen := strings.Contains(out.String(), "resized")
				mu.Unlock()
				if seen {
					return
				}
				for _, ws := range []pty.Winsize{{Rows: 31, Cols: 81}, {Rows: 30, Cols: 80}} {
					if err := pty.Setsize(f, &ws); err != nil {
						return // the CLI ended and the pty with it
					}
					select {
					case <-done:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}
		}()
	case <-done:
	case <-ctx.Done():
	}
	err = cmd.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// The CLI exited; whatever it printed has been read.
	}
	mu.Lock()
	defer mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return out.String(), code
}

// isEIO tells the error a pty master reads once the other side closed.
func isEIO(err error) bool { return errors.Is(err, syscall.EIO) }
