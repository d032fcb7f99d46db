package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/mdlayher/vsock"
)

// Vsock is transport A: one vsock listener per registered port.
type Vsock struct {
	// Log receives accept errors; slog.Default when nil.
	Log *slog.Logger
}

// Serve listens on every port of m until ctx is done.
func (v *Vsock) Serve(ctx context.Context, m *Mux, ready chan<- struct{}) error {
	log := v.Log
	if log == nil {
		log = slog.Default()
	}
	var lns []net.Listener
	for _, port := range m.Ports() {
		ln, err := vsock.Listen(port, nil)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen vsock port %d: %w", port, err)
		}
		lns = append(lns, ln)
	}
	if ready != nil {
		close(ready)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, l := range lns {
			l.Close()
		}
	})
	defer stop()
	var wg sync.WaitGroup
	for _, ln := range lns {
		port := vsockPort(ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			acceptLoop(ctx, ln, log, func(c net.Conn) { m.Dispatch(port, c) })
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func vsockPort(ln net.Listener) uint32 {
	if a, ok := ln.Addr().(*vsock.Addr); ok {
		return a.Port
	}
	return 0
}

// acceptLoop accepts until the listener is closed.
func acceptLoop(ctx context.Context, ln net.Listener, log *slog.Logger, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("link: accept", "addr", ln.Addr(), "err", err)
			continue
		}
		go serve(c)
	}
}
