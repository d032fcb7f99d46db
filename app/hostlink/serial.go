package hostlink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// SerialDialer dials guest ports over the fallback transport: one
// virtio-serial port whose host end is a unix socket served by the
// hypervisor, carrying yamux sessions in which the host is the client.
// Each Dial opens one stream and writes the port as decimal ASCII and "\n".
//
// The dialer connects lazily and reconnects: when the socket or the session
// drops (the guest agent restarted, the VM was restarted), the next Dial
// connects the socket again and starts a new session. A new session is used
// for streams only after the guest has answered a ping, so frames written
// while no guest reads the port are only pings, which a later guest session
// ignores.
type SerialDialer struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	sess   *yamux.Session
	ready  chan struct{} // closed once sess answered a ping
	closed bool
}

// NewSerial returns a Dialer over the unix socket at path (the host end of
// the "berth.link" virtio-serial port). A nil logger discards logs.
func NewSerial(path string, log *slog.Logger) *SerialDialer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SerialDialer{path: path, log: log}
}

// serialConfig is the yamux configuration of the host end.
func serialConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.MaxStreamWindowSize = 4 << 20
	cfg.StreamCloseTimeout = time.Minute
	cfg.LogOutput = io.Discard
	return cfg
}

// Dial opens a stream to port. It waits, until ctx ends, for the socket to
// accept and for the guest to answer.
func (d *SerialDialer) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	for {
		sess, err := d.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("dial serial link %s port %d: %w", d.path, port, err)
		}
		st, err := sess.OpenStream()
		if err != nil {
			// The session died between the ping and now: drop it and
			// start over with a new one.
			d.drop(sess)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("dial serial link %s port %d: %w", d.path, port, ctx.Err())
			}
			continue
		}
		if _, err := st.Write([]byte(strconv.FormatUint(uint64(port), 10) + "\n")); err != nil {
			st.Close()
			d.drop(sess)
			continue
		}
		return newStreamConn(st), nil
	}
}

// session returns a session the guest has answered on, connecting and
// pinging as needed.
func (d *SerialDialer) session(ctx context.Context) (*yamux.Session, error) {
	backoff := 20 * time.Millisecond
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, ErrClosed
		}
		if d.sess != nil && d.sess.IsClosed() {
			d.sess, d.ready = nil, nil
		}
		if d.sess == nil {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", d.path)
			if err != nil {
				d.mu.Unlock()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// The hypervisor is not (yet) serving the socket.
				if !sleepCtx(ctx, backoff) {
					return nil, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
				}
				backoff = min(backoff*2, 500*time.Millisecond)
				continue
			}
			sess, err := yamux.Client(c, serialConfig())
			if err != nil {
				d.mu.Unlock()
				c.Close()
				return nil, fmt.Errorf("start yamux client: %w", err)
			}
			d.sess, d.ready = sess, make(chan struct{})
			go d.handshake(sess, d.ready)
			d.log.Debug("serial link connected", "socket", d.path)
		}
		sess, ready := d.sess, d.ready
		d.mu.Unlock()

		select {
		case <-ready:
			return sess, nil
		case <-sess.CloseChan():
			// Loop: reconnect.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// handshake pings sess until the guest answers, then closes ready. A new
// ping leaves every half second while none is answered, so that a ping lost
// while the guest was not reading does not hold the session back for a
// whole ping timeout. It gives up when the session closes.
func (d *SerialDialer) handshake(sess *yamux.Session, ready chan struct{}) {
	answered := make(chan struct{}, 1)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		go func() {
			if _, err := sess.Ping(); err == nil {
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		}()
		select {
		case <-answered:
			close(ready)
			return
		case <-sess.CloseChan():
			return
		case <-tick.C:
		}
	}
}

// drop closes sess if it is still the current session.
func (d *SerialDialer) drop(sess *yamux.Session) {
	d.mu.Lock()
	if d.sess == sess {
		d.sess, d.ready = nil, nil
	}
	d.mu.Unlock()
	sess.Close()
}

// Ping measures one round trip over the current session.
func (d *SerialDialer) Ping(ctx context.Context) (time.Duration, error) {
	sess, err := d.session(ctx)
	if err != nil {
		return 0, fmt.Errorf("ping serial link %s: %w", d.path, err)
	}
	rtt, err := sess.Ping()
	if err != nil {
		return 0, fmt.Errorf("ping serial link %s: %w", d.path, err)
	}
	return rtt, nil
}

// Close ends the session and makes later Dials fail with ErrClosed.
func (d *SerialDialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.sess != nil {
		d.sess.Close()
		d.sess = nil
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// streamConn is a yamux stream with net.Conn close semantics: yamux's
// Stream.Close only half-closes (sends FIN), so CloseWrite maps to it, and
// Close also ends reading at once. A guest that keeps sending after Close is
// reset by the session's stream close timeout.
type streamConn struct {
	*yamux.Stream
	closed atomic.Bool
}

func newStreamConn(st *yamux.Stream) *streamConn { return &streamConn{Stream: st} }

// CloseWrite sends FIN; reading continues until the guest closes its side.
func (c *streamConn) CloseWrite() error { return c.Stream.Close() }

// Read reads from the stream; after Close it fails with net.ErrClosed.
func (c *streamConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.Stream.Read(p)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

// Close closes both directions and wakes any blocked Read.
func (c *streamConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.Stream.Close()
	c.Stream.SetReadDeadline(time.Now())
	return err
}
