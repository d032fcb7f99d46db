package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/guestagent/link"
)

// fakeGuest answers Dial like the guest agent, over real loopback TCP
// connections (which half-close): port 2375 echoes until EOF then
// half-closes; port 1025 is the guest's real tunnel service.
type fakeGuest struct {
	dials atomic.Int64
	fail  atomic.Bool
}

func (g *fakeGuest) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	if g.fail.Load() {
		return nil, errors.New("guest down")
	}
	g.dials.Add(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	host, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	c, err := ln.Accept()
	if err != nil {
		host.Close()
		return nil, err
	}
	go func() {
		switch port {
		case portDocker:
			io.Copy(c, c)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		case portTunnel:
			(&link.Tunnel{}).ServeConn(c)
		case portShell:
			io.WriteString(c, "shell port")
			c.Close()
		default:
			c.Close()
		}
	}()
	return host, nil
}

func echoThrough(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(closeWriter).CloseWrite()
		}
		errc <- err
	}()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func TestDockerSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "docker.sock")
	// A stale socket from a process that is gone.
	os.MkdirAll(dir, 0o700)
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	g := &fakeGuest{}
	s, err := ListenDocker(path, g, nil)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v; want mode 0600", fi, err)
	}
	if _, err := ListenDocker(path, g, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second listener: %v, want ErrInUse", err)
	}

	// Many connections at once, each echoing with half-close.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte(fmt.Sprint(i)), 5000+i)
			if got := echoThrough(t, c, msg); !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("connection %d: echo differs", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Guest unreachable: the client's connection is closed.
	g.fail.Store(true)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read with the guest down: %d, %v", n, err)
	}
	c.Close()

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

func TestDockerSocketRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docker.sock")
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := ListenDocker(path, &fakeGuest{}, nil); err == nil {
		t.Fatal("listened over a regular file")
	}
}

func TestDefaultSocketPath(t *testing.T) {
	tests := []struct {
		berthHome, home, want string
	}{
		{"/srv/b", "/home/u", "/srv/b/run/docker.sock"},
		{"", "/home/u", "/home/u/.berth/run/docker.sock"},
	}
	for _, tc := range tests {
		t.Setenv("BERTH_HOME", tc.berthHome)
		t.Setenv("HOME", tc.home)
		got, err := DefaultSocketPath()
		if err != nil || got != tc.want {
			t.Errorf("BERTH_HOME=%q HOME=%q: %q, %v; want %q", tc.berthHome, tc.home, got, err, tc.want)
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, proto string) int {
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tcpContainer is an echo server standing for a container's port.
func tcpContainer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func event(action, proto string, port int, target string) hostlink.PortEvent {
	return hostlink.PortEvent{Type: "port", Action: action, Proto: proto, HostIP: "127.0.0.1", HostPort: port, Target: target}
}

func TestPortsTCP(t *testing.T) {
	target := tcpContainer(t)
	p := NewPorts(&fakeGuest{}, nil)
	defer p.Close()
	port := freePort(t, "tcp")
	if err := p.Apply(event(hostlink.ActionPublished, "tcp", port, target)); err != nil {
		t.Fatal(err)
	}
	// Publishing again with the same target keeps the listener.
	if err := p.Apply(event(hostlink.ActionPublished, "tcp", port, target)); err != nil {
		t.Fatal(err)
	}
	if l := p.List(); len(l) != 1 || l[0].Target != target {
		t.Fatalf("listeners %+v", l)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 100000)
			if got := echoThrough(t, c, msg); !bytes.Equal(got, msg) {
				t.Errorf("connection %d: echo of %d bytes returned %d", i, len(msg), len(got))
			}
		}()
	}
	wg.Wait()

	// An open connection ends when the port is withdrawn, and the
	// listener is gone.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	io.WriteString(held, "x")
	one := make([]byte, 1)
	held.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(held, one); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(event(hostlink.ActionWithdrawn, "tcp", port, target)); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Read(one); err == nil {
		t.Fatal("connection still open after withdraw")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still open after withdraw")
	}
	if l := p.List(); len(l) != 0 {
		t.Fatalf("listeners after withdraw %+v", l)
	}
}

// udpContainer answers each datagram with "echo:" + datagram.
func udpContainer(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().String()
}

func udpAsk(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	buf := make([]byte, 70000)
	// UDP may drop: ask again a few times before failing.
	for range 20 {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("no answer to %q", msg)
	return ""
}

func TestPortsUDP(t *testing.T) {
	target := udpContainer(t)
	g := &fakeGuest{}
	p := NewPorts(g, nil)
	p.UDPIdle = 300 * time.Millisecond
	defer p.Close()
	port := freePort(t, "udp")
	if err := p.Apply(event(hostlink.ActionPublished, "udp", port, target)); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c1, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for i := range 5 {
		for j, c := range []net.Conn{c1, c2} {
			msg := fmt.Sprintf("client %d datagram %d", j, i)
			if got := udpAsk(t, c, msg); got != "echo:"+msg {
				t.Fatalf("answer %q to %q", got, msg)
			}
		}
	}
	big := strings.Repeat("b", 60000)
	if got := udpAsk(t, c1, big); got != "echo:"+big {
		t.Fatalf("large datagram answer of %d bytes", len(got))
	}
	if n := g.dials.Load(); n != 2 {
		t.Fatalf("%d tunnels for two clients, want 2 (one per flow)", n)
	}
	// After the idle timeout a flow ends; the next datagram opens a new one.
	time.Sleep(3 * p.UDPIdle)
	if got := udpAsk(t, c1, "again"); got != "echo:again" {
		t.Fatalf("answer after idle %q", got)
	}
	if n := g.dials.Load(); n != 3 {
		t.Fatalf("%d tunnels after an idle flow came back, want 3", n)
	}
	if err := p.Apply(event(hostlink.ActionWithdrawn, "udp", port, target)); err != nil {
		t.Fatal(err)
	}
	// The port is free again: the host can bind it.
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port still bound after withdraw: %v", err)
	}
	pc.Close()
}

type sliceSource struct {
	lines []string
}

func (s *sliceSource) Next() (hostlink.PortEvent, error) {
	if len(s.lines) == 0 {
		return hostlink.PortEvent{}, io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	return hostlink.ParseEvent([]byte(l))
}

func TestFollow(t *testing.T) {
	target := tcpContainer(t)
	a, b := freePort(t, "tcp"), freePort(t, "tcp")
	line := func(action string, port int) string {
		return fmt.Sprintf(`{"type":"port","action":%q,"proto":"tcp","hostIP":"127.0.0.1","hostPort":%d,"target":%q}`, action, port, target)
	}
	src := &sliceSource{lines: []string{
		line("published", a),
		`{"type":"container","action":"start"}`,
		line("published", b),
		line("withdrawn", a),
	}}
	p := NewPorts(&fakeGuest{}, nil)
	defer p.Close()
	if err := p.Follow(src); !errors.Is(err, io.EOF) {
		t.Fatalf("Follow ended with %v, want EOF", err)
	}
	l := p.List()
	if len(l) != 1 || l[0].Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(b)) {
		t.Fatalf("listeners %+v, want only port %d", l, b)
	}
	c, err := net.Dial("tcp", l[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := echoThrough(t, c, []byte("hi")); string(got) != "hi" {
		t.Fatalf("echo %q", got)
	}
}

func TestApplyRejectsInvalid(t *testing.T) {
	p := NewPorts(&fakeGuest{}, nil)
	defer p.Close()
	tests := []hostlink.PortEvent{
		{Type: "port", Action: "published", Proto: "sctp", HostPort: 80, Target: "1.2.3.4:80"},
		{Type: "port", Action: "published", Proto: "tcp", HostPort: 0, Target: "1.2.3.4:80"},
		{Type: "port", Action: "published", Proto: "tcp", HostPort: 80, Target: "nowhere"},
	}
	for _, e := range tests {
		if err := p.Apply(e); err == nil {
			t.Errorf("Apply(%+v) accepted", e)
		}
	}
	p.Close()
	if err := p.Apply(event(hostlink.ActionPublished, "tcp", 80, "1.2.3.4:80")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}

// eventsGuest serves GET /events on port 1024: each subscription sends the
// next batch of lines, then ends the stream, but for the last batch, whose
// stream stays open.
type eventsGuest struct {
	fakeGuest
	mu      sync.Mutex
	batches [][]string
	subs    int
}

func (g *eventsGuest) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	if port != 1024 {
		return g.fakeGuest.Dial(ctx, port)
	}
	host, guest := net.Pipe()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		var batch []string
		if g.subs < len(g.batches) {
			batch = g.batches[g.subs]
		}
		last := g.subs == len(g.batches)-1
		g.subs++
		g.mu.Unlock()
		if batch == nil {
			<-r.Context().Done()
			return
		}
		for _, l := range batch {
			io.WriteString(w, l+"\n")
		}
		w.(http.Flusher).Flush()
		if last {
			<-r.Context().Done()
		}
	})}
	go srv.Serve(&oneConnListener{c: guest})
	return host, nil
}

type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	<-done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.UnixAddr{Name: "control", Net: "unix"} }

// TestFollowGuest: when the event stream drops, the listeners close and
// the next subscription's announcements open them again.
func TestFollowGuest(t *testing.T) {
	target := tcpContainer(t)
	a, b := freePort(t, "tcp"), freePort(t, "tcp")
	line := func(port int) string {
		return fmt.Sprintf(`{"type":"port","action":"published","proto":"tcp","hostIP":"127.0.0.1","hostPort":%d,"target":%q}`, port, target)
	}
	g := &eventsGuest{batches: [][]string{{line(a)}, {line(b)}}}
	p := NewPorts(g, nil)
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.FollowGuest(ctx, hostlink.NewClient(g))
		close(done)
	}()
	// Wait for the second subscription's port.
	deadline := time.Now().Add(time.Minute)
	for {
		l := p.List()
		if len(l) == 1 && l[0].Addr == net.JoinHostPort("127.0.0.1", strconv.Itoa(b)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners %+v, want port %d", l, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.mu.Lock()
	if g.subs != 2 {
		t.Errorf("%d subscriptions, want 2", g.subs)
	}
	g.mu.Unlock()
	l := p.List()
	if len(l) != 1 || l[0].Addr != net.JoinHostPort("127.0.0.1", strconv.Itoa(b)) {
		t.Fatalf("listeners %+v, want only port %d", l, b)
	}
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a))); err == nil {
		c.Close()
		t.Fatal("port of the dropped stream still listening")
	}
	cancel()
	<-done
	if l := p.List(); len(l) != 0 {
		t.Fatalf("listeners after FollowGuest ended: %+v", l)
	}
}

// TestShellSocket: the shell socket reaches the guest's shell port.
func TestShellSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shell.sock")
	s, err := ListenShell(path, &fakeGuest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "shell port" {
		t.Fatalf("through the shell socket: %q, %v", b, err)
	}
}
