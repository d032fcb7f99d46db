package forward

import (
	"errors"
	"net"
	"sync"
)

// multiListener accepts on several listeners as one: the docker socket on
// Windows is a unix socket and the named pipe \\.\pipe\docker_engine, and
// both are spliced to the guest the same way. Addr is the first
// listener's; an accept error of any listener is returned once by Accept,
// and that listener accepts no more.
type multiListener struct {
	lns   []net.Listener
	conns chan acceptResult
	done  chan struct{}
	once  sync.Once
	errs  error
}

type acceptResult struct {
	c   net.Conn
	err error
}

// newMultiListener merges lns; one listener is returned as it is.
func newMultiListener(lns ...net.Listener) net.Listener {
	if len(lns) == 1 {
		return lns[0]
	}
	m := &multiListener{lns: lns, conns: make(chan acceptResult), done: make(chan struct{})}
	for _, ln := range lns {
		go m.loop(ln)
	}
	return m
}

func (m *multiListener) loop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		select {
		case m.conns <- acceptResult{c, err}:
		case <-m.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// Accept returns the next connection of any listener.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case r := <-m.conns:
		return r.c, r.err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener.
func (m *multiListener) Close() error {
	m.once.Do(func() {
		close(m.done)
		var errs []error
		for _, ln := range m.lns {
			if err := ln.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		m.errs = errors.Join(errs...)
	})
	return m.errs
}

// Addr is the first listener's address.
func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }

// Pipe is the Windows named pipe the socket is also served on
// (\\.\pipe\docker_engine), or "" when there is none.
func (s *DockerSocket) Pipe() string {
	if m, ok := s.ln.(*multiListener); ok {
		for _, l := range m.lns[1:] {
			if l.Addr().Network() == "pipe" {
				return l.Addr().String()
			}
		}
	}
	return ""
}
