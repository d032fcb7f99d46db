// Package hostlink owns the host end of the channel to the guest agent (see
// docs/CHANNEL.md): Dial(port) over vsock where the hypervisor has it (on
// Windows, Hyper-V sockets to the ports' hv_sock service IDs), else
// over the yamux-over-virtio-serial fallback, and a client of the control
// API served on port 1024. Above a Dialer nothing knows which transport is
// in use.
package hostlink

import (
	"context"
	"errors"
	"net"
)

// Dialer opens a connection to a guest agent port.
type Dialer interface {
	// Dial connects to port (2375, 1024, 1025, ...). The returned
	// connection supports CloseWrite for half-close.
	Dial(ctx context.Context, port uint32) (net.Conn, error)
}

// HalfCloser is implemented by every connection a Dialer returns.
type HalfCloser interface {
	CloseWrite() error
}

// ErrClosed is returned by Dial after the Dialer was closed.
var ErrClosed = errors.New("hostlink: dialer closed")
