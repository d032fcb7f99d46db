package hostlink

import (
	"context"
	"fmt"
	"net"

	"github.com/mdlayher/vsock"
)

// VsockDialer dials guest ports over AF_VSOCK (vhost-vsock under QEMU).
type VsockDialer struct {
	// CID is the guest context ID.
	CID uint32
}

// NewVsock returns a Dialer for the guest with the given context ID.
func NewVsock(cid uint32) *VsockDialer { return &VsockDialer{CID: cid} }

// Dial connects to the guest CID:port. The connection supports CloseWrite.
func (d *VsockDialer) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := vsock.Dial(d.CID, port, nil)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("dial vsock %d:%d: %w", d.CID, port, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("dial vsock %d:%d: %w", d.CID, port, ctx.Err())
	}
}
