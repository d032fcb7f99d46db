// Package linktest owns the conformance suite of the host <-> guest channel
// (docs/CHANNEL.md): one set of checks (echo, large transfers both ways,
// half-close, many concurrent streams, reconnection after the guest end
// restarts, unknown ports, dials that wait for the guest) that every
// transport runs, and a stand-in guest end for the yamux-over-serial
// transport that serves the suite's services.
package linktest

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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/berthdesktop/berth/app/hostlink"
)

// The suite's services use the channel's port numbers; a transport under
// test must reach, for each, a service that behaves as described.
const (
	PortEcho   = 2375 // echoes until EOF, then closes
	PortSink   = 1024 // reads until EOF, answers the sha256 hex, closes
	PortSource = 1025 // reads "N\n", writes N Pattern bytes, closes
	PortNone   = 9    // nothing serves it: the stream must end at once
)

// Services returns the suite's services by port, for guest stand-ins.
func Services() map[uint32]func(net.Conn) {
	return map[uint32]func(net.Conn){
		PortEcho: func(c net.Conn) {
			io.Copy(c, c)
			c.Close()
		},
		PortSink: func(c net.Conn) {
			h := sha256.New()
			io.Copy(h, c)
			io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
			c.Close()
		},
		PortSource: func(c net.Conn) {
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				c.Close()
				return
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			io.Copy(c, io.LimitReader(Pattern{}, n))
			c.Close()
		},
	}
}

// Pattern is an endless reader of a fixed byte pattern.
type Pattern struct{}

func (Pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

// SerialGuest stands in for QEMU's chardev socket and the guest agent at
// once: it listens on a unix socket and, for each host connection, runs a
// yamux server that reads the port line of each stream and dispatches.
type SerialGuest struct {
	path     string
	services map[uint32]func(net.Conn)
	mu       sync.Mutex
	ln       net.Listener
	conn     net.Conn
	wg       sync.WaitGroup
}

func StartSerialGuest(t testing.TB, path string, services map[uint32]func(net.Conn)) *SerialGuest {
	g := &SerialGuest{path: path, services: services}
	g.Start(t)
	t.Cleanup(g.Stop)
	return g
}

func (g *SerialGuest) Start(t testing.TB) {
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
func (g *SerialGuest) Stop() {
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

// GuestEnd controls the guest end of a transport under test.
type GuestEnd struct {
	Stop  func() // the guest end goes away, as when the VM process ends
	Start func() // it comes back
}

// transport is one implementation of the channel under the suite: it
// returns a Dialer and the control of the guest end.
type Transport struct {
	Name  string
	Setup func(t testing.TB) (d hostlink.Dialer, g GuestEnd)
	// Shared sets the transport up once for every check (each leaves the
	// guest end running), for transports costly to set up, such as a VM.
	Shared bool
}

// Run runs the whole suite against tr; each check sets tr up afresh unless
// tr.Shared.
func Run(t *testing.T, tr Transport) {
	tests := []struct {
		name string
		run  func(t *testing.T, d hostlink.Dialer, g GuestEnd)
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
	var d hostlink.Dialer
	var g GuestEnd
	if tr.Shared {
		d, g = tr.Setup(t)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, g := d, g
			if !tr.Shared {
				d, g = tr.Setup(t)
			}
			tc.run(t, d, g)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func echoOnce(ctx context.Context, d hostlink.Dialer, msg []byte) ([]byte, error) {
	c, err := d.Dial(ctx, PortEcho)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(hostlink.HalfCloser).CloseWrite()
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

func testEcho(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
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

func testLargeIn(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
	const n = 64 << 20
	c, err := d.Dial(testCtx(t), PortSink)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(c, h), io.LimitReader(Pattern{}, n)); err != nil {
		t.Fatalf("write %d bytes: %v", n, err)
	}
	if err := c.(hostlink.HalfCloser).CloseWrite(); err != nil {
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

func testLargeOut(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
	const n = 64 << 20
	c, err := d.Dial(testCtx(t), PortSource)
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
	io.Copy(want, io.LimitReader(Pattern{}, n))
	if got != n || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read %d bytes (digest match %v), want %d", got, bytes.Equal(h.Sum(nil), want.Sum(nil)), n)
	}
}

// testHalfClose: after the host's CloseWrite the guest still sends, and the
// host still reads; the guest sees EOF only after the host's data.
func testHalfClose(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
	c, err := d.Dial(testCtx(t), PortSink)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "part one")
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, " and two")
	if err := c.(hostlink.HalfCloser).CloseWrite(); err != nil {
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

func testConcurrent(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
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

func testReconnect(t *testing.T, d hostlink.Dialer, g GuestEnd) {
	if _, err := echoOnce(testCtx(t), d, []byte("before")); err != nil {
		t.Fatal(err)
	}
	held, err := d.Dial(testCtx(t), PortEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	g.Stop()
	g.Start()
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

func testUnknownPort(t *testing.T, d hostlink.Dialer, _ GuestEnd) {
	c, err := d.Dial(testCtx(t), PortNone)
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
func testDialWaits(t *testing.T, d hostlink.Dialer, g GuestEnd) {
	if _, err := echoOnce(testCtx(t), d, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	g.Stop()
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
	g.Start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
