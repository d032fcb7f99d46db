package forward

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pipeAddr stands in for go-winio's pipe address in tests.
type pipeAddr string

func (pipeAddr) Network() string  { return "pipe" }
func (a pipeAddr) String() string { return string(a) }

type namedListener struct {
	net.Listener
	addr net.Addr
}

func (l namedListener) Addr() net.Addr { return l.addr }

func TestMultiListener(t *testing.T) {
	dir := t.TempDir()
	a, err := net.Listen("unix", filepath.Join(dir, "a.sock"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.Listen("unix", filepath.Join(dir, "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	m := newMultiListener(a, b)
	if m.Addr().String() != a.Addr().String() {
		t.Errorf("Addr %s, want the first listener's %s", m.Addr(), a.Addr())
	}
	for _, name := range []string{"a.sock", "b.sock", "a.sock"} {
		c, err := net.Dial("unix", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, name)
		s, err := m.Accept()
		if err != nil {
			t.Fatalf("accept %s: %v", name, err)
		}
		buf := make([]byte, len(name))
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != name {
			t.Fatalf("read %q, %v; want %q", buf, err, name)
		}
		s.Close()
		c.Close()
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := m.Accept()
		accepted <- err
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if _, err := net.Dial("unix", filepath.Join(dir, "b.sock")); err == nil {
		t.Error("the second listener still accepts after Close")
	}
	m.Close() // twice is harmless
}

func TestMultiListenerOne(t *testing.T) {
	a, err := net.Listen("unix", filepath.Join(t.TempDir(), "a.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if m := newMultiListener(a); m != a {
		t.Error("one listener is wrapped")
	}
}

// TestDockerSocketServesBoth splices connections from both listeners of a
// merged docker socket, as on Windows (socket and named pipe).
func TestDockerSocketServesBoth(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "docker.sock")
	unixLn, err := listenUnix(sockPath)
	if err != nil {
		t.Fatal(err)
	}
	pipePath := filepath.Join(dir, "pipe.sock")
	other, err := net.Listen("unix", pipePath)
	if err != nil {
		t.Fatal(err)
	}
	pipeLn := namedListener{other, pipeAddr(`\\.\pipe\docker_engine`)}
	s := &DockerSocket{ln: newMultiListener(unixLn, pipeLn), path: sockPath, port: portDocker, dialer: &fakeGuest{}, log: slog.New(slog.DiscardHandler), conns: map[net.Conn]struct{}{}}
	if got := s.Pipe(); got != `\\.\pipe\docker_engine` {
		t.Errorf("Pipe() = %q", got)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	for _, p := range []string{sockPath, pipePath} {
		c, err := net.Dial("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "ping "+p)
		c.(*net.UnixConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "ping "+p {
			t.Fatalf("through %s: %q, %v", p, got, err)
		}
	}
	s.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	plain := &DockerSocket{ln: unixLn}
	if plain.Pipe() != "" {
		t.Error("a socket without a pipe names one")
	}
}

func TestDockerPipeName(t *testing.T) {
	tests := []struct {
		env, want, err string
	}{
		{"", DefaultDockerPipe, ""},
		{"off", "", ""},
		{`\\.\pipe\berth_test`, `\\.\pipe\berth_test`, ""},
		{`\\.\pipe\`, "", "not a named pipe"},
		{`\\.\pipe\a\b`, "", "not a named pipe"},
		{`C:\docker.sock`, "", "not a named pipe"},
		{"npipe:////./pipe/docker_engine", "", "not a named pipe"},
	}
	for _, tc := range tests {
		got, err := dockerPipeName(func(k string) string {
			if k == "BERTH_DOCKER_PIPE" {
				return tc.env
			}
			return ""
		})
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("BERTH_DOCKER_PIPE=%q: %q, %v; want %q, %q", tc.env, got, err, tc.want, tc.err)
		}
	}
}

func TestPipeSDDL(t *testing.T) {
	got, err := pipeSDDL("S-1-5-21-1004336348-1177238915-682003330-1001")
	if err != nil || got != "D:P(A;;GA;;;S-1-5-21-1004336348-1177238915-682003330-1001)" {
		t.Errorf("pipeSDDL = %q, %v", got, err)
	}
	for _, bad := range []string{"", "BA", "S-1-5-32-544)(A;;GA;;;WD", "WD"} {
		if _, err := pipeSDDL(bad); err == nil {
			t.Errorf("pipeSDDL(%q) accepted", bad)
		}
	}
}
