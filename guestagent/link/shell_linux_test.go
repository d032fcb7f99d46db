package link

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// execSpawn is the test's stand-in for pid1's reaper: os/exec with the tty.
func execSpawn(argv, env []string, tty *os.File) (ShellProcess, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		return ShellProcess{}, err
	}
	code := make(chan int, 1)
	go func() {
		cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			code <- 128 + int(ws.Signal())
			return
		}
		code <- ws.ExitStatus()
	}()
	return ShellProcess{Exited: code, Signal: func(sig syscall.Signal) { syscall.Kill(-cmd.Process.Pid, sig) }}, nil
}

// shellSession runs one session against the service: it writes the
// request, calls onOutput with the output so far after each data frame,
// and collects the output until the exit.
func shellSession(t *testing.T, req ShellRequest, onOutput func(w io.Writer, soFar string)) (string, int) {
	t.Helper()
	host, guest := tcpPair(t)
	defer host.Close()
	go (&Shell{Spawn: execSpawn}).ServeConn(guest)
	line, _ := json.Marshal(req)
	host.Write(append(line, '\n'))
	host.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out bytes.Buffer
	for {
		typ, p, err := ReadShellFrame(host)
		if err != nil {
			t.Fatalf("read frame: %v (output so far %q)", err, out.String())
		}
		switch typ {
		case ShellData:
			out.Write(p)
			onOutput(host, out.String())
		case ShellExit:
			return out.String(), int(int32(binary.BigEndian.Uint32(p)))
		}
	}
}

func TestShellRunsOnAPty(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	resize := func(cols, rows uint16) []byte {
		var b [4]byte
		binary.BigEndian.PutUint16(b[0:], cols)
		binary.BigEndian.PutUint16(b[2:], rows)
		return b[:]
	}
	sent := false
	out, code := shellSession(t, ShellRequest{Term: "vt100", Cols: 100, Rows: 40,
		Cmd: []string{"/bin/sh", "-c", `[ -t 0 ] && echo tty; echo "term=$TERM"; stty size; read x; stty size; echo "got $x"; exit 3`}},
		func(w io.Writer, soFar string) {
			// The window changes once the first size is out.
			if strings.Contains(soFar, "40 100") && !sent {
				sent = true
				WriteShellFrame(w, ShellResize, resize(120, 50))
				WriteShellFrame(w, ShellData, []byte("hello\n"))
			}
		})
	for _, want := range []string{"tty", "term=vt100", "40 100", "50 120", "got hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if code != 3 {
		t.Errorf("exit status %d, want 3", code)
	}

	// A bare command name is found on PATH.
	if out, code := shellSession(t, ShellRequest{Cmd: []string{"echo", "bare", "name"}}, func(io.Writer, string) {}); code != 0 || !strings.Contains(out, "bare name") {
		t.Errorf("bare name: %q, %d", out, code)
	}

	// A command that cannot start reports it and 127.
	out, code = shellSession(t, ShellRequest{Cmd: []string{"/nonexistent/shell"}}, func(io.Writer, string) {})
	if code != 127 || !strings.Contains(out, "/nonexistent/shell") {
		t.Errorf("missing command: %q, %d", out, code)
	}
}

func TestShellHostLeavingHangsUp(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	host, guest := tcpPair(t)
	done := make(chan struct{})
	go func() { (&Shell{Spawn: execSpawn}).ServeConn(guest); close(done) }()
	host.Write([]byte(`{"cmd":["/bin/sh","-c","echo up; sleep 600"]}` + "\n"))
	host.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, p, err := ReadShellFrame(host); err != nil || !strings.Contains(string(p), "up") {
		t.Fatalf("first output %q, %v", p, err)
	}
	host.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the session outlived its host")
	}
}

func TestShellFrames(t *testing.T) {
	var b bytes.Buffer
	WriteShellFrame(&b, ShellData, []byte("abc"))
	WriteShellFrame(&b, ShellExit, []byte{0, 0, 0, 7})
	if typ, p, err := ReadShellFrame(&b); err != nil || typ != ShellData || string(p) != "abc" {
		t.Fatalf("%q %q %v", typ, p, err)
	}
	if typ, p, err := ReadShellFrame(&b); err != nil || typ != ShellExit || binary.BigEndian.Uint32(p) != 7 {
		t.Fatalf("%q %q %v", typ, p, err)
	}
	if _, _, err := ReadShellFrame(&b); !errors.Is(err, io.EOF) {
		t.Fatalf("at the end: %v", err)
	}
	for name, in := range map[string][]byte{
		"unknown type":    {'z', 0, 0, 0, 0},
		"short resize":    {'w', 0, 0, 0, 2, 1, 1},
		"too large":       {'d', 0xff, 0, 0, 0},
		"truncated":       {'d', 0, 0, 0, 9, 'a'},
		"truncated head":  {'d', 0},
		"exit of 2 bytes": {'x', 0, 0, 0, 2, 0, 0},
	} {
		if _, _, err := ReadShellFrame(bytes.NewReader(in)); !errors.Is(err, ErrBadShellFrame) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string]string{
		"not json":      "hello\n",
		"negative cols": `{"cols":-1}` + "\n",
		"huge rows":     `{"rows":70000}` + "\n",
		"term with =":   `{"term":"a=b"}` + "\n",
		"NUL in cmd":    `{"cmd":["a\u0000b"]}` + "\n",
		"too long":      `{"term":"` + strings.Repeat("x", maxShellRequest) + `"}` + "\n",
	} {
		if _, err := ReadShellRequest(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadShellFrame(f *testing.F) {
	f.Add([]byte{'d', 0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{'w', 0, 0, 0, 4, 0, 80, 0, 24})
	f.Add([]byte{'x', 0, 0, 0, 4, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			typ, p, err := ReadShellFrame(r)
			if err != nil {
				return
			}
			var b bytes.Buffer
			if err := WriteShellFrame(&b, typ, p); err != nil {
				t.Fatal(err)
			}
			typ2, p2, err := ReadShellFrame(&b)
			if err != nil || typ2 != typ || !bytes.Equal(p, p2) {
				t.Fatalf("round trip: %q %q %v", typ2, p2, err)
			}
		}
	})
}

func FuzzReadShellRequest(f *testing.F) {
	f.Add([]byte(`{"term":"xterm","cols":80,"rows":24}` + "\n"))
	f.Add([]byte(`{"cmd":["/bin/sh","-c","ls"]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadShellRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if req.Cols < 0 || req.Rows < 0 || req.Cols > 0xffff || req.Rows > 0xffff || strings.ContainsAny(req.Term, "\x00\n=") {
			t.Fatalf("accepted %+v", req)
		}
	})
}
