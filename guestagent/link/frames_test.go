package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

func frame(typ byte, flags uint16, id uint32, payload []byte) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	if typ == yamuxTypeData {
		binary.BigEndian.PutUint32(h[8:], uint32(len(payload)))
	} else if typ == yamuxTypePing {
		binary.BigEndian.PutUint32(h[8:], uint32(len(payload))) // the ping's number
		payload = nil
	} else {
		binary.BigEndian.PutUint32(h[8:], 256<<10)
	}
	return append(h, payload...)
}

func TestFrameScanner(t *testing.T) {
	t.Run("stream 1 again", func(t *testing.T) { testFrameScanner(t, false) })
	t.Run("ping 0 again", func(t *testing.T) { testFrameScanner(t, true) })
}

func testFrameScanner(t *testing.T, ping bool) {
	var hello, again []byte
	if ping {
		// Pings carry their number in the length field.
		hello = frame(yamuxTypePing, yamuxFlagSYN, 0, nil)
		again = frame(yamuxTypePing, yamuxFlagSYN, 0, nil)
	}
	first := bytes.Join([][]byte{
		hello,
		frame(yamuxTypeWindow, yamuxFlagSYN, 1, nil),
		// Later pings of the same session are not a new host.
		frame(yamuxTypePing, yamuxFlagSYN, 0, make([]byte, 1)),
		frame(yamuxTypeData, 0, 1, []byte("2375\nGET / HTTP/1.1\r\n")),
		frame(yamuxTypeWindow, yamuxFlagSYN, 3, nil),
		// A payload that looks like a header opening stream 1 is payload.
		frame(yamuxTypeData, 0, 3, frame(yamuxTypeWindow, yamuxFlagSYN, 1, nil)),
	}, nil)
	second := bytes.Join([][]byte{
		again,
		frame(yamuxTypeWindow, yamuxFlagSYN, 1, nil),
		frame(yamuxTypeData, 0, 1, []byte("1024\n")),
	}, nil)
	all := append(append([]byte(nil), first...), second...)
	// Every way of cutting the bytes into reads finds the same boundary.
	for cut := 1; cut <= len(all); cut++ {
		var s frameScanner
		var got, next []byte
		found := false
		for i := 0; i < len(all) && !found; i += cut {
			d, n, nh := s.Feed(all[i:min(i+cut, len(all))])
			got = append(got, d...)
			if nh {
				found, next = true, append(n, all[min(i+cut, len(all)):]...)
			}
		}
		if !found || !bytes.Equal(got, first) || !bytes.Equal(next, second) {
			t.Fatalf("reads of %d bytes: found %v, delivered %d bytes (want %d), next %d (want %d)",
				cut, found, len(got), len(first), len(next), len(second))
		}
	}
}

func FuzzFrameScanner(f *testing.F) {
	f.Add(frame(yamuxTypeWindow, yamuxFlagSYN, 1, nil), 5)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut <= 0 {
			cut = 1
		}
		var s frameScanner
		total := 0
		for i := 0; i < len(b); i += cut {
			d, n, nh := s.Feed(b[i:min(i+cut, len(b))])
			total += len(d)
			if nh {
				total += len(n) + len(b[min(i+cut, len(b)):])
				if total > len(b) {
					t.Fatalf("%d bytes out of %d in", total, len(b))
				}
				return
			}
		}
		if total > len(b) {
			t.Fatalf("%d bytes delivered from %d", total, len(b))
		}
	})
}

// sharedPort imitates a virtio-serial port whose host end leaves and a new
// one connects before the guest reads the gap: the guest sees one byte
// stream. Bytes the guest writes go to whichever host is connected.
type sharedPort struct {
	guest, host net.Conn
	mu          sync.Mutex
	cur         *io.PipeWriter
}

func newSharedPort() *sharedPort {
	g, h := net.Pipe()
	p := &sharedPort{guest: g, host: h}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := h.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			w := p.cur
			p.mu.Unlock()
			if w != nil {
				w.Write(buf[:n])
			}
		}
	}()
	return p
}

func (p *sharedPort) Read(b []byte) (int, error)        { return p.guest.Read(b) }
func (p *sharedPort) Write(b []byte) (int, error)       { return p.guest.Write(b) }
func (p *sharedPort) SetReadDeadline(t time.Time) error { return p.guest.SetReadDeadline(t) }

// hostConn is one host's end: it reads what the guest writes while it is
// connected and writes into the shared stream.
type hostConn struct {
	p    *sharedPort
	r    *io.PipeReader
	w    *io.PipeWriter
	once sync.Once
}

func (p *sharedPort) connect() *hostConn {
	r, w := io.Pipe()
	p.mu.Lock()
	p.cur = w
	p.mu.Unlock()
	return &hostConn{p: p, r: r, w: w}
}

func (h *hostConn) Read(b []byte) (int, error)  { return h.r.Read(b) }
func (h *hostConn) Write(b []byte) (int, error) { return h.p.host.Write(b) }
func (h *hostConn) Close() error {
	h.once.Do(func() {
		h.p.mu.Lock()
		if h.p.cur == h.w {
			h.p.cur = nil
		}
		h.p.mu.Unlock()
		h.w.Close()
	})
	return nil
}

func TestSerialQuickReconnect(t *testing.T) {
	port := newSharedPort()
	m := NewMux(nil)
	m.Handle(7, func(c net.Conn) {
		defer c.Close()
		b := make([]byte, 64)
		n, _ := c.Read(b)
		c.Write(append([]byte("echo "), b[:n]...))
	})
	s := &Serial{Poll: time.Millisecond, open: func(string) (serialDevice, error) { return port, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, m, nil)
	for round := 0; round < 6; round++ {
		hc := port.connect()
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		sess, err := yamux.Client(hc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if round%2 == 0 {
			// As the host end does: a ping answered before the first stream.
			if _, err := sess.Ping(); err != nil {
				t.Fatalf("round %d: ping: %v", round, err)
			}
		}
		st, err := sess.Open()
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		msg := fmt.Sprintf("round %d", round)
		fmt.Fprintf(st, "7\n%s", msg)
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(st)
		if string(got) != "echo "+msg {
			t.Fatalf("round %d: got %q, %v", round, got, err)
		}
		// Leave without the guest reading a gap; the next host comes at once.
		sess.Close()
		hc.Close()
	}
}
