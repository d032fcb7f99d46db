package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/miekg/dns"
)

// Server is a [Handler] serving a UDP and a TCP listener, made by [Listen].
type Server struct {
	cancel    context.CancelFunc
	listeners []*listener
	closeOnce sync.Once
	closeErr  error
}

// listener is one of the server's two.
type listener struct {
	network string
	srv     *dns.Server
	started chan struct{} // closed once srv serves
	done    chan error    // srv's ActivateAndServe's result
}

// serve serves h on udp and tcp until Close; cancel ends h's forwards in
// flight. The listeners are the server's from then on: on failure they are
// closed here.
func serve(h *Handler, cancel context.CancelFunc, udp net.PacketConn, tcp net.Listener) (*Server, error) {
	s := &Server{cancel: cancel}
	s.listeners = []*listener{
		{network: "udp", srv: &dns.Server{PacketConn: udp, Handler: h, UDPSize: ednsSize}},
		{network: "tcp", srv: &dns.Server{Listener: tcp, Handler: h}},
	}
	for _, l := range s.listeners {
		l.started = make(chan struct{})
		l.done = make(chan error, 1)
		l.srv.NotifyStartedFunc = func() { close(l.started) }
		go l.run(h.log)
	}
	var errs []error
	for _, l := range s.listeners {
		select {
		case <-l.started:
		case err := <-l.done:
			l.done <- err
			errs = append(errs, fmt.Errorf("serve %s on %s: %w", l.network, l.addr(), err))
		}
	}
	if len(errs) == 0 {
		return s, nil
	}
	// Closing the sockets ends a server whether it began serving or not.
	cancel()
	udp.Close()
	tcp.Close()
	for _, l := range s.listeners {
		<-l.done
	}
	return nil, errors.Join(errs...)
}

func (l *listener) run(log *slog.Logger) {
	err := l.srv.ActivateAndServe()
	if err != nil {
		log.Warn("dns: a listener of the embedded DNS server stopped", "network", l.network, "addr", l.addr(), "err", err)
	}
	l.done <- err
}

func (l *listener) addr() net.Addr {
	if l.srv.PacketConn != nil {
		return l.srv.PacketConn.LocalAddr()
	}
	return l.srv.Listener.Addr()
}

// Close stops serving and closes both listeners, waiting for the queries
// being answered; forwards in flight are abandoned. Safe to call twice:
// later calls return what the first returned.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		var errs []error
		for _, l := range s.listeners {
			// Shutdown closes the socket (a server that stopped by itself
			// already closed it) and waits for the queries in hand.
			if err := l.srv.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("shut down the %s listener on %s: %w", l.network, l.addr(), err))
			}
			if err := <-l.done; err != nil {
				errs = append(errs, fmt.Errorf("serve %s on %s: %w", l.network, l.addr(), err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
