package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
)

// Ports keeps one host listener per published port and tunnels what
// arrives on it to the target in the guest through the tunnel port.
type Ports struct {
	dialer Dialer
	log    *slog.Logger
	// UDPIdle ends a UDP flow after this long without datagrams either
	// way; 60s when 0.
	UDPIdle time.Duration

	mu        sync.Mutex
	listeners map[portKey]*portListener
	closed    bool
}

// NewPorts returns an empty set of forwarded ports dialing through d. A nil
// logger discards.
func NewPorts(d Dialer, log *slog.Logger) *Ports {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ports{dialer: d, log: log, listeners: map[portKey]*portListener{}}
}

type portKey struct {
	proto  string
	hostIP string
	port   int
}

// Forwarded describes one open host listener.
type Forwarded struct {
	Proto  string
	Addr   string // host address the listener is bound to
	Target string // guest address the tunnel reaches
}

type portListener struct {
	fw     Forwarded
	tcp    net.Listener
	udp    net.PacketConn
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[io.Closer]struct{}
}

// hostAddr is where the host listens for a published port: the published
// host IP ("" means all IPv4 addresses, as dockerd's 0.0.0.0).
func hostAddr(e hostlink.PortEvent) string {
	ip := e.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(e.HostPort))
}

// Apply opens the listener of a published port or closes that of a
// withdrawn one. Publishing a port that is already forwarded to the same
// target does nothing; to another target, replaces it.
func (p *Ports) Apply(e hostlink.PortEvent) error {
	if err := e.Validate(); err != nil {
		return err
	}
	key := portKey{e.Proto, e.HostIP, e.HostPort}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("forward %s %s: %w", e.Proto, hostAddr(e), net.ErrClosed)
	}
	old := p.listeners[key]
	if e.Action == hostlink.ActionWithdrawn {
		if old != nil {
			delete(p.listeners, key)
			old.close()
			p.log.Info("port withdrawn", "proto", e.Proto, "addr", old.fw.Addr)
		}
		return nil
	}
	if old != nil {
		if old.fw.Target == e.Target {
			return nil
		}
		delete(p.listeners, key)
		old.close()
	}
	l := &portListener{fw: Forwarded{Proto: e.Proto, Addr: hostAddr(e), Target: e.Target}, done: make(chan struct{}), conns: map[io.Closer]struct{}{}}
	switch e.Proto {
	case "tcp":
		ln, err := net.Listen("tcp", l.fw.Addr)
		if err != nil {
			return fmt.Errorf("forward tcp %s: %w", l.fw.Addr, err)
		}
		l.tcp = ln
		l.fw.Addr = ln.Addr().String()
		l.wg.Add(1)
		go p.serveTCP(l)
	case "udp":
		pc, err := net.ListenPacket("udp", l.fw.Addr)
		if err != nil {
			return fmt.Errorf("forward udp %s: %w", l.fw.Addr, err)
		}
		l.udp = pc
		l.fw.Addr = pc.LocalAddr().String()
		l.wg.Add(1)
		go p.serveUDP(l)
	}
	p.listeners[key] = l
	p.log.Info("port published", "proto", e.Proto, "addr", l.fw.Addr, "target", e.Target)
	return nil
}

// List returns the open listeners.
func (p *Ports) List() []Forwarded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Forwarded, 0, len(p.listeners))
	for _, l := range p.listeners {
		out = append(out, l.fw)
	}
	return out
}

// CloseAll closes every listener and its connections; the Ports stays
// usable.
func (p *Ports) CloseAll() {
	p.mu.Lock()
	ls := p.listeners
	p.listeners = map[portKey]*portListener{}
	p.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
}

// Close closes every listener; later Apply calls fail.
func (p *Ports) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.CloseAll()
	return nil
}

// EventSource yields port events (a *hostlink.EventStream).
type EventSource interface {
	Next() (hostlink.PortEvent, error)
}

// Follow applies events from src until it ends. Events of unknown types
// and events that cannot be applied are logged and skipped. It returns the
// error that ended the stream (io.EOF at a clean end).
func (p *Ports) Follow(src EventSource) error {
	for {
		e, err := src.Next()
		switch {
		case errors.Is(err, hostlink.ErrUnknownEvent):
			continue
		case err != nil:
			return err
		}
		if err := p.Apply(e); err != nil {
			p.log.Warn("cannot forward port", "err", err)
		}
	}
}

// FollowGuest subscribes to the guest's port events and follows them until
// ctx ends, subscribing again after the stream drops. When it drops, every
// listener is closed first: the new subscription announces again each port
// published at that moment.
func (p *Ports) FollowGuest(ctx context.Context, c *hostlink.Client) {
	for ctx.Err() == nil {
		es, err := c.Events(ctx)
		if err == nil {
			err = p.Follow(es)
			es.Close()
		}
		p.CloseAll()
		if ctx.Err() != nil {
			return
		}
		p.log.Debug("port events stream ended; subscribing again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (l *portListener) track(c io.Closer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *portListener) untrack(c io.Closer) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// close stops the listener, ends its connections and flows and waits.
func (l *portListener) close() {
	l.closed.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.conns {
			c.Close()
		}
		l.mu.Unlock()
		if l.tcp != nil {
			l.tcp.Close()
		}
		if l.udp != nil {
			l.udp.Close()
		}
	})
	l.wg.Wait()
}

// dialTunnel opens a tunnel to target and writes its header line.
func (p *Ports) dialTunnel(proto, target string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := p.dialer.Dial(ctx, portTunnel)
	if err != nil {
		return nil, fmt.Errorf("tunnel to %s %s: %w", proto, target, err)
	}
	if _, err := io.WriteString(c, proto+" "+target+"\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("tunnel to %s %s: write header: %w", proto, target, err)
	}
	return c, nil
}

func (p *Ports) serveTCP(l *portListener) {
	defer l.wg.Done()
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			return
		}
		if !l.track(c) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(c)
			g, err := p.dialTunnel("tcp", l.fw.Target)
			if err != nil {
				p.log.Warn("published port: guest unreachable", "addr", l.fw.Addr, "err", err)
				c.Close()
				return
			}
			if !l.track(g) {
				g.Close()
				c.Close()
				return
			}
			defer l.untrack(g)
			Splice(c, g)
		}()
	}
}

// maxDatagram is the largest UDP payload a 2-byte frame length carries.
const maxDatagram = 65535

// udpFlow is one client's datagrams through one tunnel.
type udpFlow struct {
	tunnel net.Conn
	wmu    sync.Mutex
	last   time.Time // of the last datagram either way; under wmu
}

func (p *Ports) serveUDP(l *portListener) {
	defer l.wg.Done()
	idle := p.UDPIdle
	if idle <= 0 {
		idle = 60 * time.Second
	}
	var mu sync.Mutex
	flows := map[string]*udpFlow{}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		key := from.String()
		mu.Lock()
		f := flows[key]
		if f == nil {
			t, err := p.dialTunnel("udp", l.fw.Target)
			if err != nil {
				mu.Unlock()
				p.log.Warn("published udp port: guest unreachable", "addr", l.fw.Addr, "err", err)
				continue
			}
			if !l.track(t) {
				mu.Unlock()
				t.Close()
				return
			}
			f = &udpFlow{tunnel: t, last: time.Now()}
			flows[key] = f
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer l.untrack(t)
				p.udpReturn(l, f, from, idle)
				mu.Lock()
				if flows[key] == f {
					delete(flows, key)
				}
				mu.Unlock()
			}()
		}
		mu.Unlock()
		if err := f.send(buf[:n]); err != nil {
			f.tunnel.Close()
		}
	}
}

// send writes one framed datagram to the tunnel.
func (f *udpFlow) send(d []byte) error {
	frame := make([]byte, 2+len(d))
	binary.BigEndian.PutUint16(frame, uint16(len(d)))
	copy(frame[2:], d)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.last = time.Now()
	_, err := f.tunnel.Write(frame)
	return err
}

func (f *udpFlow) touch() time.Time {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.last
}

// udpReturn relays framed datagrams from the tunnel back to the client
// until the tunnel ends or the flow is idle.
func (p *Ports) udpReturn(l *portListener, f *udpFlow, client net.Addr, idle time.Duration) {
	defer f.tunnel.Close()
	hdr := make([]byte, 2)
	buf := make([]byte, maxDatagram)
	for {
		if err := f.readFull(hdr, idle); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr))
		if err := f.readFull(buf[:n], idle); err != nil {
			return
		}
		f.wmu.Lock()
		f.last = time.Now()
		f.wmu.Unlock()
		if _, err := l.udp.WriteTo(buf[:n], client); err != nil {
			return
		}
	}
}

// readFull fills b from the tunnel. It fails once the flow has been idle
// (no datagram either way) for idle, keeping partial progress across the
// read deadlines it uses to notice that.
func (f *udpFlow) readFull(b []byte, idle time.Duration) error {
	for got := 0; got < len(b); {
		f.tunnel.SetReadDeadline(f.touch().Add(idle))
		n, err := f.tunnel.Read(b[got:])
		got += n
		if err != nil {
			if isTimeout(err) && time.Since(f.touch()) < idle {
				continue // a datagram went out meanwhile: wait on
			}
			return err
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
