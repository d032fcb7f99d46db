package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
)

// The channel's well-known ports.
const (
	PortDockerAPI  uint32 = 2375
	PortControl    uint32 = 1024
	PortTunnel     uint32 = 1025
	PortShell      uint32 = 1026
	PortFileEvents uint32 = 1027
)

// Handler serves one accepted channel connection and closes it when done.
type Handler func(conn net.Conn)

// Mux dispatches accepted connections to the handler registered for their
// port. It is shared by every transport, so a service does not know which one
// carried its connection.
type Mux struct {
	mu       sync.RWMutex
	handlers map[uint32]Handler
	log      *slog.Logger
}

// NewMux returns an empty Mux logging to log (slog.Default when nil).
func NewMux(log *slog.Logger) *Mux {
	if log == nil {
		log = slog.Default()
	}
	return &Mux{handlers: map[uint32]Handler{}, log: log}
}

// Handle registers h for port, replacing any earlier handler.
func (m *Mux) Handle(port uint32, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handlers[port] = h
}

// Ports returns the registered ports.
func (m *Mux) Ports() []uint32 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ports := make([]uint32, 0, len(m.handlers))
	for p := range m.handlers {
		ports = append(ports, p)
	}
	return ports
}

// Dispatch hands conn to the handler of port, or closes it when no handler is
// registered.
func (m *Mux) Dispatch(port uint32, conn net.Conn) {
	m.mu.RLock()
	h := m.handlers[port]
	m.mu.RUnlock()
	if h == nil {
		m.log.Warn("link: connection to unknown port", "port", port)
		conn.Close()
		return
	}
	h(conn)
}

// maxPortLine bounds the port header of a multiplexed stream ("65535\n").
const maxPortLine = 12

// ErrBadPortLine is returned for a stream header that is not a port number.
var ErrBadPortLine = errors.New("bad port line")

// ParsePortLine parses the header a host writes at the start of each
// multiplexed stream: the port in ASCII decimal, without the newline.
func ParsePortLine(line string) (uint32, error) {
	if line == "" || len(line) > maxPortLine-1 {
		return 0, fmt.Errorf("%w: %q", ErrBadPortLine, line)
	}
	for _, c := range line {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadPortLine, line)
		}
	}
	p, err := strconv.ParseUint(line, 10, 32)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%w: %q", ErrBadPortLine, line)
	}
	return uint32(p), nil
}

// readPortLine reads the port header byte by byte so that nothing after the
// newline is consumed: the rest of the stream belongs to the service.
func readPortLine(r io.Reader) (uint32, error) {
	var buf [maxPortLine]byte
	n := 0
	for {
		if n == len(buf) {
			return 0, fmt.Errorf("%w: too long", ErrBadPortLine)
		}
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			return 0, fmt.Errorf("read port line: %w", err)
		}
		if buf[n] == '\n' {
			return ParsePortLine(string(buf[:n]))
		}
		n++
	}
}

// serveStream reads the port header of a multiplexed stream and dispatches
// the rest of it.
func (m *Mux) serveStream(conn net.Conn) {
	port, err := readPortLine(conn)
	if err != nil {
		m.log.Warn("link: stream rejected", "err", err)
		conn.Close()
		return
	}
	m.Dispatch(port, conn)
}

// Transport accepts channel connections and hands them to a Mux until ctx is
// done. Ready is closed once the transport listens.
type Transport interface {
	Serve(ctx context.Context, m *Mux, ready chan<- struct{}) error
}
