package hostlink

import (
	"context"
	"fmt"
	"net"

	winio "github.com/Microsoft/go-winio"
	"github.com/Microsoft/go-winio/pkg/guid"
)

// HvsockDialer dials guest ports over Hyper-V sockets (AF_HYPERV): the
// guest's vsock listeners, through Linux's hv_sock transport, answer at
// the VM's ID and the service ID HvsockServiceID gives for the port. Each
// service ID must be registered under the host's
// GuestCommunicationServices key (Berth's installer does it).
type HvsockDialer struct {
	// VMID is the Hyper-V VM's ID (Msvm_ComputerSystem.Name).
	VMID guid.GUID
}

// NewHvsock returns a Dialer for the Hyper-V VM whose ID is vmID (a GUID,
// with or without braces).
func NewHvsock(vmID string) (*HvsockDialer, error) {
	id, err := parseGUID(vmID)
	if err != nil {
		return nil, fmt.Errorf("hvsock dialer: VM ID %q: %w", vmID, err)
	}
	return &HvsockDialer{VMID: id}, nil
}

// Dial connects to the guest's vsock port. The connection supports
// CloseWrite.
func (d *HvsockDialer) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	s, err := HvsockServiceID(port)
	if err != nil {
		return nil, err
	}
	svc, err := guid.FromString(s)
	if err != nil {
		return nil, fmt.Errorf("dial hvsock %s port %d: %w", d.VMID, port, err)
	}
	c, err := winio.Dial(ctx, &winio.HvsockAddr{VMID: d.VMID, ServiceID: svc})
	if err != nil {
		return nil, fmt.Errorf("dial hvsock %s port %d (service %s): %w", d.VMID, port, s, err)
	}
	return c, nil
}

func parseGUID(s string) (guid.GUID, error) {
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	return guid.FromString(s)
}
