package link

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Target is what the first line of a tunnel connection names.
type Target struct {
	Proto string // "tcp" or "udp"
	Addr  string // host:port
}

// ErrBadTarget is returned for a tunnel header that names no valid target.
var ErrBadTarget = errors.New("bad tunnel target")

// maxTargetLine bounds the tunnel header.
const maxTargetLine = 300

// ParseTarget parses a tunnel header line (without its newline), e.g.
// "tcp 172.17.0.2:80".
func ParseTarget(line string) (Target, error) {
	proto, addr, ok := strings.Cut(line, " ")
	if !ok || (proto != "tcp" && proto != "udp") {
		return Target{}, fmt.Errorf("%w: %q", ErrBadTarget, line)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, " \t\r\n") {
		return Target{}, fmt.Errorf("%w: %q", ErrBadTarget, line)
	}
	if _, err := net.LookupPort(proto, port); err != nil {
		return Target{}, fmt.Errorf("%w: %q", ErrBadTarget, line)
	}
	return Target{Proto: proto, Addr: addr}, nil
}

// Tunnel serves port 1025: it reads the target line, dials the target in the
// guest and relays bytes (TCP) or length-framed datagrams (UDP).
type Tunnel struct {
	Log         *slog.Logger
	DialTimeout time.Duration // 10s when 0
	// NetworkReady, when set, closes once the guest's network is
	// configured. The channel listens before that (boot steps run side by
	// side), and a dial to the host's side of the VM network made earlier
	// fails at once ("network is unreachable"): the tunnel waits for it,
	// within the dial timeout, before dialing.
	NetworkReady <-chan struct{}
}

// ServeConn is the port 1025 Handler.
func (t *Tunnel) ServeConn(conn net.Conn) {
	defer conn.Close()
	log := t.Log
	if log == nil {
		log = slog.Default()
	}
	br := bufio.NewReader(io.LimitReader(conn, maxTargetLine))
	line, err := br.ReadString('\n')
	if err != nil {
		log.Warn("link: tunnel header", "err", err)
		return
	}
	target, err := ParseTarget(strings.TrimSuffix(line, "\n"))
	if err != nil {
		log.Warn("link: tunnel header", "err", err)
		return
	}
	// Bytes buffered past the header belong to the payload.
	rest := make([]byte, br.Buffered())
	_, _ = io.ReadFull(br, rest)
	src := io.MultiReader(bytesReader(rest), conn)
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dialCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if t.NetworkReady != nil {
		select {
		case <-t.NetworkReady:
		case <-dialCtx.Done():
			log.Warn("link: tunnel dial: the guest network is not up", "target", target.Addr, "proto", target.Proto)
			return
		}
	}
	var d net.Dialer
	out, err := d.DialContext(dialCtx, target.Proto, target.Addr)
	if err != nil {
		log.Warn("link: tunnel dial", "target", target.Addr, "proto", target.Proto, "err", err)
		return
	}
	defer out.Close()
	if target.Proto == "tcp" {
		splice(conn, src, out)
		return
	}
	relayUDP(conn, src, out)
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// maxDatagram is the largest UDP payload a 2-byte frame length carries.
const maxDatagram = 0xFFFF

// ReadFrame reads one length-framed datagram into buf (which must hold
// maxDatagram bytes) and returns the payload.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > len(buf) {
		return nil, fmt.Errorf("datagram frame of %d bytes exceeds buffer of %d", n, len(buf))
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return nil, fmt.Errorf("read datagram frame: %w", io.ErrUnexpectedEOF)
	}
	return buf[:n], nil
}

// WriteFrame writes one datagram with its 2-byte big-endian length.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxDatagram {
		return fmt.Errorf("datagram of %d bytes too large to frame", len(payload))
	}
	buf := make([]byte, 2+len(payload))
	binary.BigEndian.PutUint16(buf, uint16(len(payload)))
	copy(buf[2:], payload)
	_, err := w.Write(buf)
	return err
}

// relayUDP moves framed datagrams from src to out and datagrams from out
// back to conn as frames, until either side ends.
func relayUDP(conn net.Conn, src io.Reader, out net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, maxDatagram)
		for {
			n, err := out.Read(buf)
			if err != nil {
				conn.Close()
				return
			}
			if err := WriteFrame(conn, buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, maxDatagram)
	for {
		p, err := ReadFrame(src, buf)
		if err != nil {
			break
		}
		if _, err := out.Write(p); err != nil {
			break
		}
	}
	out.Close()
	wg.Wait()
}

// closeWriter is a connection that can half-close.
type closeWriter interface{ CloseWrite() error }

// splice copies both ways between a and b (reading a through ar), passing on
// half-closes, and returns when both directions are done.
func splice(a net.Conn, ar io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(a, b)
		halfClose(a)
	}()
	_, _ = io.Copy(b, ar)
	halfClose(b)
	wg.Wait()
}

func halfClose(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// EngineProxy serves port 2375 by splicing raw bytes to the engine's unix
// socket, so hijacked streams (attach, exec) pass untouched.
type EngineProxy struct {
	Socket string
	Log    *slog.Logger
}

// ServeConn is the port 2375 Handler.
func (p *EngineProxy) ServeConn(conn net.Conn) {
	defer conn.Close()
	out, err := net.Dial("unix", p.Socket)
	if err != nil {
		log := p.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("link: dial engine", "socket", p.Socket, "err", err)
		return
	}
	defer out.Close()
	splice(conn, conn, out)
}
