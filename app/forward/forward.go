// Package forward owns the host ends that users' tools connect to: the
// docker socket ($BERTH_HOME/run/docker.sock; on Windows also the named pipe
// \\.\pipe\docker_engine), whose connections are
// spliced raw to the guest's Docker API port so that attach, exec and other
// hijacked streams work without the host parsing HTTP, and the published
// ports, whose host listeners follow the guest's port events and tunnel
// each connection or UDP flow through the guest's tunnel port.
package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Channel ports used here (docs/CHANNEL.md).
const (
	portDocker uint32 = 2375
	portTunnel uint32 = 1025
	portShell  uint32 = 1026
)

// Dialer opens a connection to a guest agent port (hostlink.Dialer,
// machine.VM).
type Dialer interface {
	Dial(ctx context.Context, port uint32) (net.Conn, error)
}

// ErrInUse is returned when another process serves the docker socket.
var ErrInUse = errors.New("docker socket in use by another process")

// DefaultSocketPath is $BERTH_HOME/run/docker.sock, or
// ~/.berth/run/docker.sock when BERTH_HOME is not set.
func DefaultSocketPath() (string, error) {
	home := os.Getenv("BERTH_HOME")
	if home == "" {
		u, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("docker socket path: %w", err)
		}
		home = filepath.Join(u, ".berth")
	}
	return filepath.Join(home, "run", "docker.sock"), nil
}

// DockerSocket serves the host's docker socket (or another unix socket
// spliced to one guest port).
type DockerSocket struct {
	ln     net.Listener
	path   string
	port   uint32
	dialer Dialer
	log    *slog.Logger
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// ListenDocker creates the docker socket at path (mode 0600, its folder
// 0700), removing a stale socket left by a process that is gone; it fails
// with ErrInUse when a live process answers on it. A nil logger discards.
func ListenDocker(path string, d Dialer, log *slog.Logger) (*DockerSocket, error) {
	return listenPort(path, d, portDocker, log)
}

// ListenShell serves the guest's shell port (1026) on a unix socket at path
// the same way: `berth shell` connects there.
func ListenShell(path string, d Dialer, log *slog.Logger) (*DockerSocket, error) {
	return listenPort(path, d, portShell, log)
}

func listenPort(path string, d Dialer, port uint32, log *slog.Logger) (*DockerSocket, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := listenHost(path, port, log)
	if err != nil {
		return nil, err
	}
	return &DockerSocket{ln: ln, path: path, port: port, dialer: d, log: log, conns: map[net.Conn]struct{}{}}, nil
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("docker socket folder %s: %w", filepath.Dir(path), err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("docker socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("docker socket %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale docker socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on docker socket %s: %w", path, err)
	}
	// The listener removes the file when closed.
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("docker socket %s: %w", path, err)
	}
	return ln, nil
}

// Path is the socket's path.
func (s *DockerSocket) Path() string { return s.path }

// Serve accepts connections until Close and splices each to the guest's
// Docker API port. It returns nil after Close.
func (s *DockerSocket) Serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("accept on docker socket %s: %w", s.path, err)
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			g, err := s.dialer.Dial(ctx, s.port)
			cancel()
			if err != nil {
				s.log.Warn("socket forward: guest unreachable", "socket", s.path, "port", s.port, "err", err)
				c.Close()
				return
			}
			Splice(c, g)
		}()
	}
}

func (s *DockerSocket) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *DockerSocket) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, removes the socket file, ends open connections and
// waits for their splices.
func (s *DockerSocket) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// closeWriter is a connection that can half-close.
type closeWriter interface {
	CloseWrite() error
}

// Splice copies bytes both ways between a and b. When one side's reads end,
// the other side's write half is closed (or the whole connection, when it
// cannot half-close), so an EOF travels through. It returns when both
// directions are done, having closed both connections.
func Splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	one := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			cw.CloseWrite()
			return
		}
		// A failed copy or no half-close: end both.
		dst.Close()
		src.Close()
	}
	go one(a, b)
	go one(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
