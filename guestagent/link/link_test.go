package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

func TestParsePortLine(t *testing.T) {
	tests := []struct {
		line    string
		want    uint32
		wantErr bool
	}{
		{"2375", 2375, false},
		{"1024", 1024, false},
		{"4294967295", 4294967295, false},
		{"4294967296", 0, true},
		{"0", 0, true},
		{"", 0, true},
		{"-1", 0, true},
		{"+5", 0, true},
		{" 5", 0, true},
		{"12a", 0, true},
		{"00000000001", 1, false},
		{"000000000001", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePortLine(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePortLine(%q) = %d, %v; want %d, err %v", tt.line, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadPortLine) {
			t.Errorf("ParsePortLine(%q) error %v is not ErrBadPortLine", tt.line, err)
		}
	}
}

func FuzzParsePortLine(f *testing.F) {
	for _, s := range []string{"2375", "0", "99999999999", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, err := ParsePortLine(line)
		if err == nil && (p == 0 || fmt.Sprint(p) != strings.TrimLeft(line, "0")) {
			t.Fatalf("ParsePortLine(%q) = %d", line, p)
		}
	})
}

func TestReadPortLineLeavesPayload(t *testing.T) {
	r := strings.NewReader("1025\npayload")
	p, err := readPortLine(r)
	if err != nil || p != 1025 {
		t.Fatalf("readPortLine = %d, %v", p, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "payload" {
		t.Errorf("payload after header = %q", rest)
	}
	if _, err := readPortLine(strings.NewReader("123456789012345\n")); err == nil {
		t.Error("an overlong header was accepted")
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		line    string
		want    Target
		wantErr bool
	}{
		{"tcp 172.17.0.2:80", Target{"tcp", "172.17.0.2:80"}, false},
		{"udp 127.0.0.1:53", Target{"udp", "127.0.0.1:53"}, false},
		{"tcp [fd00::2]:8080", Target{"tcp", "[fd00::2]:8080"}, false},
		{"sctp 1.2.3.4:5", Target{}, true},
		{"tcp 1.2.3.4", Target{}, true},
		{"tcp :80", Target{}, true},
		{"tcp 1.2.3.4:99999", Target{}, true},
		{"tcp  1.2.3.4:80", Target{}, true},
		{"tcp", Target{}, true},
		{"", Target{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, %v", tt.line, got, err)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add("tcp 172.17.0.2:80")
	f.Add("udp [::1]:53")
	f.Fuzz(func(t *testing.T, line string) {
		tg, err := ParseTarget(line)
		if err != nil {
			return
		}
		if tg.Proto != "tcp" && tg.Proto != "udp" {
			t.Fatalf("proto %q", tg.Proto)
		}
		if _, _, err := net.SplitHostPort(tg.Addr); err != nil {
			t.Fatalf("addr %q: %v", tg.Addr, err)
		}
	})
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, maxDatagram)} {
		if err := WriteFrame(&buf, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFrame(&buf, make([]byte, maxDatagram+1)); err == nil {
		t.Error("an oversized datagram was framed")
	}
	scratch := make([]byte, maxDatagram)
	for _, want := range []int{3, 0, maxDatagram} {
		p, err := ReadFrame(&buf, scratch)
		if err != nil || len(p) != want {
			t.Fatalf("ReadFrame = %d bytes, %v; want %d", len(p), err, want)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 5, 1}), scratch); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		scratch := make([]byte, 16)
		r := bytes.NewReader(b)
		for {
			p, err := ReadFrame(r, scratch)
			if err != nil {
				return
			}
			if len(p) > len(scratch) {
				t.Fatal("frame larger than the buffer")
			}
		}
	})
}

func TestDecodeTimeRequest(t *testing.T) {
	tests := []struct {
		body    string
		want    int64
		wantErr bool
	}{
		{`{"unixNano":1700000000123456789}`, 1700000000123456789, false},
		{`{"unixNano":0}`, 0, true},
		{`{"unixNano":-5}`, 0, true},
		{`{}`, 0, true},
		{`not json`, 0, true},
	}
	for _, tt := range tests {
		got, err := DecodeTimeRequest([]byte(tt.body))
		if (err != nil) != tt.wantErr || (err == nil && got.UnixNano() != tt.want) {
			t.Errorf("DecodeTimeRequest(%s) = %v, %v", tt.body, got, err)
		}
	}
}

func FuzzDecodeTimeRequest(f *testing.F) {
	f.Add([]byte(`{"unixNano":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := DecodeTimeRequest(b)
		if err == nil && tm.UnixNano() <= 0 {
			t.Fatalf("accepted non-positive time %v", tm)
		}
	})
}

// fakeSystem records what the control API asks of the guest.
type fakeSystem struct {
	mu       sync.Mutex
	clock    time.Time
	shutdown int
	diskErr  error
}

func (f *fakeSystem) EngineState() string   { return EngineReady }
func (f *fakeSystem) Uptime() time.Duration { return 1500 * time.Millisecond }
func (f *fakeSystem) DiskUsage() (DiskUsage, error) {
	return DiskUsage{DataRoot: "/var/lib/berth", TotalBytes: 100, UsedBytes: 40, FreeBytes: 55}, f.diskErr
}
func (f *fakeSystem) SetClock(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = t
	return nil
}
func (f *fakeSystem) Shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown++
}

// serveControl serves a Control through a Mux on a fresh pipe per request,
// as a transport would.
func controlClient(t *testing.T, c *Control) *http.Client {
	m := NewMux(nil)
	m.Handle(PortControl, c.ServeConn)
	t.Cleanup(func() { c.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		go m.serveStream(b)
		if _, err := fmt.Fprintf(a, "%d\n", PortControl); err != nil {
			return nil, err
		}
		return a, nil
	}}}
}

func TestControlAPI(t *testing.T) {
	sys := &fakeSystem{}
	ports := NewPortBroadcaster(0)
	c := &Control{Sys: sys, Ports: ports, Versions: map[string]string{"agent": "v1", "kernel": "6.1"}}
	client := controlClient(t, c)

	tests := []struct {
		method, path, body string
		code               int
		check              func(t *testing.T, body []byte)
	}{
		{"GET", "/status", "", 200, func(t *testing.T, b []byte) {
			var s Status
			json.Unmarshal(b, &s)
			if s.State != "running" || s.Engine != "ready" || s.Versions["agent"] != "v1" || s.UptimeSeconds != 1.5 {
				t.Errorf("status = %+v", s)
			}
		}},
		{"GET", "/disk", "", 200, func(t *testing.T, b []byte) {
			var d DiskUsage
			json.Unmarshal(b, &d)
			if d != (DiskUsage{"/var/lib/berth", 100, 40, 55}) {
				t.Errorf("disk = %+v", d)
			}
		}},
		{"POST", "/time", `{"unixNano":1700000000000000001}`, 204, func(t *testing.T, _ []byte) {
			if sys.clock.UnixNano() != 1700000000000000001 {
				t.Errorf("clock set to %v", sys.clock)
			}
		}},
		{"POST", "/time", `{"unixNano":"soon"}`, 400, nil},
		{"POST", "/time", strings.Repeat(" ", maxBody+10), 400, nil},
		{"GET", "/time", "", 405, nil},
		{"POST", "/shutdown", "", 202, func(t *testing.T, _ []byte) {
			if sys.shutdown != 1 {
				t.Errorf("shutdown called %d times", sys.shutdown)
			}
		}},
		{"GET", "/nothing", "", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://guest"+tt.path, strings.NewReader(tt.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, b, tt.code)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}

	sys.diskErr = errors.New("statfs failed")
	resp, err := client.Get("http://guest/disk")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("disk error gave %d", resp.StatusCode)
	}
}

func TestControlEvents(t *testing.T) {
	ports := NewPortBroadcaster(0)
	ports.Publish("tcp", "0.0.0.0", 8080, "172.17.0.2:80")
	client := controlClient(t, &Control{Sys: &fakeSystem{}, Ports: ports})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://guest/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	next := func() PortEvent {
		var e PortEvent
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("decode event: %v", err)
		}
		return e
	}
	want := []PortEvent{
		{"port", ActionPublished, "tcp", "0.0.0.0", 8080, "172.17.0.2:80"},
		{"port", ActionPublished, "udp", "127.0.0.1", 5353, "172.17.0.3:53"},
		{"port", ActionWithdrawn, "tcp", "0.0.0.0", 8080, "172.17.0.2:80"},
	}
	if got := next(); got != want[0] {
		t.Fatalf("first event %+v, want the port published before subscribing", got)
	}
	ports.Publish("udp", "127.0.0.1", 5353, "172.17.0.3:53")
	ports.Withdraw("tcp", "0.0.0.0", 8080)
	ports.Withdraw("tcp", "0.0.0.0", 9999) // never published: no event
	for _, w := range want[1:] {
		if got := next(); got != w {
			t.Errorf("event %+v, want %+v", got, w)
		}
	}
}

func TestPortBroadcasterSlowSubscriber(t *testing.T) {
	b := NewPortBroadcaster(2)
	ch := b.SubscribePorts(context.Background())
	for i := 0; i < 5; i++ {
		b.Publish("tcp", "0.0.0.0", 1000+i, "10.0.0.1:80")
	}
	n := 0
	for range ch {
		n++
	}
	if n != 2 {
		t.Errorf("slow subscriber got %d events before its channel closed, want 2", n)
	}
}

// tcpPair returns both ends of a loopback TCP connection (they half-close).
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return a, <-ch
}

func TestTunnelTCP(t *testing.T) {
	// The target upper-cases what it reads until EOF, then answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
		c.Close()
	}()
	host, guest := tcpPair(t)
	go (&Tunnel{}).ServeConn(guest)
	fmt.Fprintf(host, "tcp %s\nhello tunnel", ln.Addr())
	host.(*net.TCPConn).CloseWrite()
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(host)
	if err != nil || string(got) != "HELLO TUNNEL" {
		t.Errorf("tunnel answer %q, %v", got, err)
	}
}

func TestTunnelUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), addr)
		}
	}()
	host, guest := tcpPair(t)
	defer host.Close()
	go (&Tunnel{}).ServeConn(guest)
	fmt.Fprintf(host, "udp %s\n", pc.LocalAddr())
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	scratch := make([]byte, maxDatagram)
	for _, msg := range []string{"one", "two"} {
		if err := WriteFrame(host, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		p, err := ReadFrame(host, scratch)
		if err != nil || string(p) != "echo:"+msg {
			t.Fatalf("datagram %q, %v", p, err)
		}
	}
}

func TestTunnelRejectsBadHeader(t *testing.T) {
	host, guest := tcpPair(t)
	done := make(chan struct{})
	go func() {
		(&Tunnel{}).ServeConn(guest)
		close(done)
	}()
	fmt.Fprint(host, "ftp 1.2.3.4:21\n")
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _ := host.Read(make([]byte, 1)); n != 0 {
		t.Error("bad header was answered")
	}
	<-done
}

func TestEngineProxy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "engine saw %s %s", r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	host, guest := tcpPair(t)
	go (&EngineProxy{Socket: sock}).ServeConn(guest)
	fmt.Fprint(host, "GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(host), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "engine saw GET /_ping" {
		t.Errorf("body %q", b)
	}
}

func TestMuxUnknownPortCloses(t *testing.T) {
	m := NewMux(nil)
	a, b := net.Pipe()
	go m.serveStream(b)
	fmt.Fprint(a, "9999\n")
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after unknown port: %v, want EOF", err)
	}
}

// fakePort imitates a virtio-serial port: reads return 0 bytes while no
// host end is connected; a host connects through connect().
type fakePort struct {
	mu    sync.Mutex
	guest net.Conn // guest end of the connected host, nil when none
}

func (p *fakePort) connect() net.Conn {
	host, guest := net.Pipe()
	p.mu.Lock()
	p.guest = guest
	p.mu.Unlock()
	return host
}

func (p *fakePort) cur() net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.guest
}

func (p *fakePort) Read(b []byte) (int, error) {
	c := p.cur()
	if c == nil {
		return 0, io.EOF
	}
	n, err := c.Read(b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
		p.mu.Lock()
		if p.guest == c {
			p.guest = nil
		}
		p.mu.Unlock()
		return 0, io.EOF
	}
	return n, err
}

func (p *fakePort) Write(b []byte) (int, error) {
	c := p.cur()
	if c == nil {
		return len(b), nil // nobody listens: the data is dropped
	}
	return c.Write(b)
}

func (p *fakePort) SetReadDeadline(t time.Time) error {
	if c := p.cur(); c != nil {
		return c.SetReadDeadline(t)
	}
	return nil
}

func TestSerialSessionsSurviveReconnect(t *testing.T) {
	port := &fakePort{}
	m := NewMux(nil)
	m.Handle(7, func(c net.Conn) {
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo %s", line)
	})
	s := &Serial{Poll: time.Millisecond, open: func(string) (serialDevice, error) { return port, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go s.Serve(ctx, m, ready)
	<-ready
	time.Sleep(10 * time.Millisecond) // the guest polls an unconnected port

	for round := 0; round < 3; round++ {
		host := port.connect()
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		sess, err := yamux.Client(host, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			st, err := sess.Open()
			if err != nil {
				t.Fatalf("round %d: open: %v", round, err)
			}
			fmt.Fprintf(st, "7\nround %d stream %d\n", round, i)
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(st)
			want := fmt.Sprintf("echo round %d stream %d\n", round, i)
			if string(got) != want {
				t.Fatalf("round %d: got %q, %v; want %q", round, got, err, want)
			}
			st.Close()
		}
		// The host goes away; the guest must start a fresh session for the
		// next host.
		sess.Close()
		host.Close()
	}
}

// TestTunnelWaitsForNetwork: a stream that arrives before the guest's
// network is up is held until it is, then dialed; one that waits past the
// dial timeout ends without dialing.
func TestTunnelWaitsForNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	// The network never comes up: the stream ends, nothing was dialed.
	host, guest := tcpPair(t)
	served := make(chan struct{})
	go func() {
		(&Tunnel{DialTimeout: 20 * time.Millisecond, NetworkReady: make(chan struct{})}).ServeConn(guest)
		close(served)
	}()
	fmt.Fprintf(host, "tcp %s\n", ln.Addr())
	<-served
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(host); err != nil || len(b) != 0 {
		t.Fatalf("stream without network: %q, %v", b, err)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("dialed before the network was up")
	default:
	}

	// The network comes up while the stream waits: the dial happens then.
	ready := make(chan struct{})
	host, guest = tcpPair(t)
	go (&Tunnel{NetworkReady: ready}).ServeConn(guest)
	fmt.Fprintf(host, "tcp %s\nping", ln.Addr())
	host.(*net.TCPConn).CloseWrite()
	close(ready)
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no dial after the network came up")
	}
	b, _ := io.ReadAll(c)
	c.Write(bytes.ToUpper(b))
	c.Close()
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(host); err != nil || string(got) != "PING" {
		t.Fatalf("tunnel answer %q, %v", got, err)
	}
}
