package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// SerialPortName is the name of the virtio-serial port of transport B.
const SerialPortName = "berth.link"

// SerialPath is where pid1 links the port.
const SerialPath = "/dev/virtio-ports/" + SerialPortName

// serialDevice is what the serial transport needs of the port: an
// *os.File in production, a fake in tests.
type serialDevice interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Serial is transport B: yamux sessions over one virtio-serial port, the
// guest being the yamux server. A read of 0 bytes means no host end is
// connected: before a session has seen data the transport waits and retries;
// after, the host has gone and the session ends, and the next session starts
// when the host reconnects.
type Serial struct {
	// Path of the port device; SerialPath when empty.
	Path string
	// Poll is the wait between reads while no host is connected (20ms when 0).
	Poll time.Duration
	// Log receives session events; slog.Default when nil.
	Log *slog.Logger

	open func(path string) (serialDevice, error)
}

// Serve runs sessions until ctx is done.
func (s *Serial) Serve(ctx context.Context, m *Mux, ready chan<- struct{}) error {
	path := s.Path
	if path == "" {
		path = SerialPath
	}
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	open := s.open
	if open == nil {
		open = func(p string) (serialDevice, error) { return os.OpenFile(p, os.O_RDWR, 0) }
	}
	dev, err := open(path)
	if err != nil {
		return fmt.Errorf("open serial link %s: %w", path, err)
	}
	if c, ok := dev.(io.Closer); ok {
		defer c.Close()
	}
	if ready != nil {
		close(ready)
	}
	var carry []byte
	for n := 1; ctx.Err() == nil; n++ {
		var err error
		carry, err = s.session(ctx, dev, m, log, carry)
		log.Debug("link: serial session ended", "session", n, "err", err, "newHost", carry != nil)
	}
	return ctx.Err()
}

// session runs one yamux server session and returns when it ends, with the
// bytes a new host already sent when it is a new host that ended it. carry
// holds such bytes from the session before.
func (s *Serial) session(ctx context.Context, dev serialDevice, m *Mux, log *slog.Logger, carry []byte) ([]byte, error) {
	poll := s.Poll
	if poll <= 0 {
		poll = 20 * time.Millisecond
	}
	conn := &serialConn{dev: dev, poll: poll, closed: make(chan struct{})}
	if len(carry) > 0 {
		conn.seen = true
		conn.pending, _, _ = conn.scan.Feed(carry)
	}
	// Reset any deadline a previous session's close left behind.
	_ = dev.SetReadDeadline(time.Time{})
	sess, err := yamux.Server(conn, yamuxConfig(log))
	if err != nil {
		return nil, fmt.Errorf("yamux server: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	for {
		st, err := sess.Accept()
		if err != nil {
			sess.Close()
			conn.Close()
			conn.readers.Wait()
			return conn.next, err
		}
		go m.serveStream(st)
	}
}

// yamuxConfig is the guest's session configuration. The guest sends no
// keepalive pings: the host's keep the session alive, and the port itself
// tells the guest that the host left (a read of 0). A guest ping written
// while no host is connected would block in the kernel until one connects:
// yamux's keepalive would then fail and its Close wait for that write, so
// the session could neither end nor give way to the next one, and the stale
// ping would reach the next host first.
func yamuxConfig(log *slog.Logger) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.MaxStreamWindowSize = 1 << 20
	cfg.LogOutput = nil
	cfg.Logger = slogPrinter{log}
	return cfg
}

// slogPrinter adapts yamux's logger to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Print(v ...any)                 { p.log.Debug(fmt.Sprint(v...)) }
func (p slogPrinter) Printf(format string, v ...any) { p.log.Debug(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.log.Debug(fmt.Sprint(v...)) }

// serialConn is the byte stream of one session over the port.
type serialConn struct {
	dev     serialDevice
	poll    time.Duration
	seen    bool // the session has read data from a connected host
	scan    frameScanner
	pending []byte // bytes read for this session, not yet delivered
	next    []byte // bytes of a new host's session, which ends this one
	ended   bool   // a new host was seen: EOF once pending is delivered
	buf     []byte
	once    sync.Once
	closed  chan struct{}
	readers sync.WaitGroup
	wmu     sync.Mutex
}

func (c *serialConn) Read(p []byte) (int, error) {
	c.readers.Add(1)
	defer c.readers.Done()
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.ended {
			return 0, io.EOF
		}
		select {
		case <-c.closed:
			return 0, io.ErrClosedPipe
		default:
		}
		if c.buf == nil {
			c.buf = make([]byte, 64<<10)
		}
		n, err := c.dev.Read(c.buf)
		if n > 0 {
			c.seen = true
			deliver, next, newHost := c.scan.Feed(c.buf[:n])
			c.pending = deliver
			if newHost {
				// Nothing more of this session may reach the new host.
				c.wmu.Lock()
				c.ended, c.next = true, next
				c.wmu.Unlock()
			}
			continue
		}
		if err == nil || errors.Is(err, io.EOF) {
			if c.seen {
				// The host end went away; end the session.
				return 0, io.EOF
			}
			select {
			case <-c.closed:
				return 0, io.ErrClosedPipe
			case <-time.After(c.poll):
			}
			continue
		}
		return 0, fmt.Errorf("read serial link: %w", err)
	}
}

func (c *serialConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ended {
		return 0, io.ErrClosedPipe
	}
	select {
	case <-c.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	n, err := c.dev.Write(p)
	if err != nil {
		return n, fmt.Errorf("write serial link: %w", err)
	}
	return n, nil
}

// Close ends the session's use of the port without closing the device: a
// blocked read is woken through the read deadline.
func (c *serialConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		_ = c.dev.SetReadDeadline(time.Now())
	})
	return nil
}
