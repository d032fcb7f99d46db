package hostlink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mdlayher/vsock"
)

// Test services of the stand-in guest, one per channel port number.
const (
	portEcho   = 2375 // echoes until EOF, then closes
	portSink   = 1024 // reads until EOF, answers the sha256 hex, closes
	portSource = 1025 // reads "N\n", writes N pattern bytes, closes
)

func guestServices() map[uint32]func(net.Conn) {
	return map[uint32]func(net.Conn){
		portEcho: func(c net.Conn) {
			io.Copy(c, c)
			c.Close()
		},
		portSink: func(c net.Conn) {
			h := sha256.New()
			io.Copy(h, c)
			io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
			c.Close()
		},
		portSource: func(c net.Conn) {
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				c.Close()
				return
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			io.Copy(c, io.LimitReader(pattern{}, n))
			c.Close()
		},
	}
}

// pattern is an endless reader of a fixed byte pattern.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

// serialGuest stands in for QEMU's chardev socket and the guest agent at
// once: it listens on a unix socket and, for each host connection, runs a
// yamux server that reads the port line of each stream and dispatches.
type serialGuest struct {
	path     string
	services map[uint32]func(net.Conn)
	mu       sync.Mutex
	ln       net.Listener
	conn     net.Conn
	wg       sync.WaitGroup
}

func startSerialGuest(t testing.TB, path string, services map[uint32]func(net.Conn)) *serialGuest {
	g := &serialGuest{path: path, services: services}
	g.start(t)
	t.Cleanup(g.stop)
	return g
}

func (g *serialGuest) start(t testing.TB) {
	ln, err := net.Listen("unix", g.path)
	if err != nil {
		t.Fatalf("listen %s: %v", g.path, err)
	}
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conn = c
			g.mu.Unlock()
			serveGuestSession(c, g.services)
		}
	}()
}

func serveGuestSession(c net.Conn, services map[uint32]func(net.Conn)) {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.MaxStreamWindowSize = 4 << 20
	sess, err := yamux.Server(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			br := bufio.NewReader(st)
			line, err := br.ReadString('\n')
			if err != nil {
				st.Close()
				return
			}
			p, err := strconv.ParseUint(strings.TrimSpace(line), 10, 32)
			h, ok := services[uint32(p)]
			if err != nil || !ok {
				st.Close()
				return
			}
			h(&bufConn{Conn: st, r: br})
		}()
	}
}

// stop closes the listener and the current connection, as when the VM
// process ends.
func (g *serialGuest) stop() {
	g.mu.Lock()
	if g.ln != nil {
		g.ln.Close()
	}
	if g.conn != nil {
		g.conn.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// bufConn reads through the buffered reader that consumed the port line.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// guestEnd controls the guest end of a transport under test.
type guestEnd struct {
	stop  func() // the guest end goes away, as when the VM process ends
	start func() // it comes back
}

// transport is one implementation of the channel under the suite: it
// returns a Dialer and the control of the guest end.
type transport struct {
	name  string
	setup func(t testing.TB) (d Dialer, g guestEnd)
}

func transports() []transport {
	return []transport{
		{name: "serial", setup: func(t testing.TB) (Dialer, guestEnd) {
			path := filepath.Join(t.TempDir(), "link.sock")
			g := startSerialGuest(t, path, guestServices())
			d := NewSerial(path, nil)
			t.Cleanup(func() { d.Close() })
			return d, guestEnd{stop: g.stop, start: func() { g.start(t) }}
		}},
		{name: "vsock", setup: func(t testing.TB) (Dialer, guestEnd) {
			ln, err := vsock.ListenContextID(vsock.Local, 0, nil)
			if err != nil {
				t.Skipf("vsock transport not available on this host: %v", err)
			}
			probe, err := vsock.Dial(vsock.Local, ln.Addr().(*vsock.Addr).Port, nil)
			if err != nil {
				ln.Close()
				t.Skipf("vsock transport not available on this host (no loopback transport): %v", err)
			}
			probe.Close()
			ln.Close()
			t.Skip("vsock loopback works here but the per-port guest stand-in is not written yet")
			return nil, guestEnd{}
		}},
	}
}

// TestConformance runs the channel suite against every transport.
func TestConformance(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) { runConformance(t, tr) })
	}
}

func runConformance(t *testing.T, tr transport) {
	tests := []struct {
		name string
		run  func(t *testing.T, d Dialer, g guestEnd)
	}{
		{"echo", testEcho},
		{"large host to guest", testLargeIn},
		{"large guest to host", testLargeOut},
		{"half close", testHalfClose},
		{"concurrent streams", testConcurrent},
		{"reconnect after guest restart", testReconnect},
		{"unknown port is closed", testUnknownPort},
		{"dial waits for guest", testDialWaits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, g := tr.setup(t)
			tc.run(t, d, g)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func echoOnce(ctx context.Context, d Dialer, msg []byte) ([]byte, error) {
	c, err := d.Dial(ctx, portEcho)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(HalfCloser).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("read echo: %w", err)
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("write echo: %w", err)
	}
	return got, nil
}

func testEcho(t *testing.T, d Dialer, _ guestEnd) {
	for _, msg := range []string{"x", "hello guest\n", strings.Repeat("abc", 10000)} {
		got, err := echoOnce(testCtx(t), d, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes returned %d bytes", len(msg), len(got))
		}
	}
}

func testLargeIn(t *testing.T, d Dialer, _ guestEnd) {
	const n = 64 << 20
	c, err := d.Dial(testCtx(t), portSink)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(c, h), io.LimitReader(pattern{}, n)); err != nil {
		t.Fatalf("write %d bytes: %v", n, err)
	}
	if err := c.(HalfCloser).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(h.Sum(nil)); string(got) != want {
		t.Fatalf("guest digest %q, want %q", got, want)
	}
}

func testLargeOut(t *testing.T, d Dialer, _ guestEnd) {
	const n = 64 << 20
	c, err := d.Dial(testCtx(t), portSource)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%d\n", n)
	h, want := sha256.New(), sha256.New()
	got, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(want, io.LimitReader(pattern{}, n))
	if got != n || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read %d bytes (digest match %v), want %d", got, bytes.Equal(h.Sum(nil), want.Sum(nil)), n)
	}
}

// testHalfClose: after the host's CloseWrite the guest still sends, and the
// host still reads; the guest sees EOF only after the host's data.
func testHalfClose(t *testing.T, d Dialer, _ guestEnd) {
	c, err := d.Dial(testCtx(t), portSink)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "part one")
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, " and two")
	if err := c.(HalfCloser).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("write after CloseWrite succeeded")
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("part one and two"))
	if string(got) != hex.EncodeToString(sum[:]) {
		t.Fatalf("guest saw other bytes: digest %q", got)
	}
}

func testConcurrent(t *testing.T, d Dialer, _ guestEnd) {
	const streams = 200
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte(strconv.Itoa(i)+","), 1000+i*37)
			got, err := echoOnce(ctx, d, msg)
			if err == nil && !bytes.Equal(got, msg) {
				err = fmt.Errorf("stream %d: echo differs (%d bytes, want %d)", i, len(got), len(msg))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testReconnect(t *testing.T, d Dialer, g guestEnd) {
	if _, err := echoOnce(testCtx(t), d, []byte("before")); err != nil {
		t.Fatal(err)
	}
	held, err := d.Dial(testCtx(t), portEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	g.stop()
	g.start()
	// A stream of the old session ends with the session.
	held.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(held); err != nil && errors.Is(err, yamux.ErrTimeout) {
		t.Fatalf("stream of the dropped session still open: %v", err)
	}
	got, err := echoOnce(testCtx(t), d, []byte("after"))
	if err != nil {
		t.Fatalf("echo after restart: %v", err)
	}
	if string(got) != "after" {
		t.Fatalf("echo after restart: %q", got)
	}
}

func testUnknownPort(t *testing.T, d Dialer, _ guestEnd) {
	c, err := d.Dial(testCtx(t), 9)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read on unknown port: %d, %v; want EOF", n, err)
	}
}

// testDialWaits: a Dial made while the guest end is down completes once it
// is back.
func testDialWaits(t *testing.T, d Dialer, g guestEnd) {
	if _, err := echoOnce(testCtx(t), d, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	g.stop()
	done := make(chan error, 1)
	go func() {
		got, err := echoOnce(testCtx(t), d, []byte("waited"))
		if err == nil && string(got) != "waited" {
			err = fmt.Errorf("echo %q", got)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("dial completed while the guest end was down: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
