package vz

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vzShaped has the shape of vz's VirtioSocketConnection (v3.7.1): the
// framework's socket in rawConn, methods that pass through, no CloseWrite.
type vzShaped struct {
	rawConn         net.Conn
	destinationPort uint32
	sourcePort      uint32
}

func (v *vzShaped) Read(b []byte) (int, error)         { return v.rawConn.Read(b) }
func (v *vzShaped) Write(b []byte) (int, error)        { return v.rawConn.Write(b) }
func (v *vzShaped) Close() error                       { return v.rawConn.Close() }
func (v *vzShaped) LocalAddr() net.Addr                { return v.rawConn.LocalAddr() }
func (v *vzShaped) RemoteAddr() net.Addr               { return v.rawConn.RemoteAddr() }
func (v *vzShaped) SetDeadline(t time.Time) error      { return v.rawConn.SetDeadline(t) }
func (v *vzShaped) SetReadDeadline(t time.Time) error  { return v.rawConn.SetReadDeadline(t) }
func (v *vzShaped) SetWriteDeadline(t time.Time) error { return v.rawConn.SetWriteDeadline(t) }

// unixPair returns two connected unix stream sockets.
func unixPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestHalfCloseThroughWrapper(t *testing.T) {
	host, guest := unixPair(t)
	connect := func(port uint32) (net.Conn, error) {
		return &vzShaped{rawConn: host, destinationPort: port, sourcePort: 5000}, nil
	}
	c, err := dialPort(context.Background(), connect, 2375)
	if err != nil {
		t.Fatal(err)
	}
	cw, ok := c.(closeWriter)
	if !ok {
		t.Fatalf("%T has no CloseWrite", c)
	}
	// The guest reads to EOF, then answers: half-close carries the EOF.
	answered := make(chan error, 1)
	go func() {
		got, err := io.ReadAll(guest)
		if err == nil {
			_, err = guest.Write([]byte("got " + string(got)))
		}
		guest.Close()
		answered <- err
	}()
	io.WriteString(c, "request")
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got request" {
		t.Fatalf("answer %q, %v", got, err)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

func TestHalfCloseable(t *testing.T) {
	host, _ := unixPair(t)
	if c := halfCloseable(host); c != host {
		t.Fatalf("a conn with CloseWrite was wrapped: %T", c)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	c := halfCloseable(p1)
	if err := c.(closeWriter).CloseWrite(); !errors.Is(err, errNoHalfClose) {
		t.Fatalf("CloseWrite of a pipe: %v", err)
	}
	// A wrapper of a conn without CloseWrite stays the wrapper.
	w := &vzShaped{rawConn: p1}
	if c := halfCloseable(w); c.(noHalfClose).Conn != w {
		t.Fatalf("%T", c)
	}
	if rawConn(nil) != nil || rawConn((*vzShaped)(nil)) != nil {
		t.Fatal("rawConn of nil")
	}
}

func TestDialPortErrors(t *testing.T) {
	_, err := dialPort(context.Background(), func(uint32) (net.Conn, error) { return nil, errors.New("reset") }, 1024)
	if err == nil || !strings.Contains(err.Error(), "port 1024") || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("err %v", err)
	}
	if _, err := dialPort(context.Background(), func(uint32) (net.Conn, error) { return nil, nil }, 1); err == nil {
		t.Fatal("no connection and no error accepted")
	}

	// A connect that outlives the context: the late connection is closed.
	release := make(chan struct{})
	host, guest := unixPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = dialPort(ctx, func(uint32) (net.Conn, error) { <-release; return host, nil }, 2375)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	close(release)
	guest.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := guest.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("late connection not closed: %v", err)
	}
}
