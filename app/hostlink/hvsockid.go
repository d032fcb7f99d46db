package hostlink

import (
	"fmt"
	"strconv"
	"strings"
)

// hvsockTemplate is the tail of the Hyper-V socket service IDs that Linux's
// hv_sock transport maps vsock ports to: a guest listening on vsock port P
// is reached from the host at service ID P-facb-11e6-bd58-64006a7986d3,
// with P as the first eight hex digits.
const hvsockTemplate = "-facb-11e6-bd58-64006a7986d3"

// MaxHvsockPort is the highest vsock port hv_sock listens on: the guest's
// ports above it are the ephemeral ports of its outgoing connections.
const MaxHvsockPort = 0x7fffffff

// HvsockServiceID is the Hyper-V socket service ID (a GUID, lower case,
// without braces, as Windows writes it under GuestCommunicationServices)
// at which the host reaches the guest's vsock port. It fails for ports
// hv_sock cannot listen on.
func HvsockServiceID(port uint32) (string, error) {
	if port > MaxHvsockPort {
		return "", fmt.Errorf("hvsock service ID of vsock port %d: above %d, the highest port hv_sock listens on", port, MaxHvsockPort)
	}
	return fmt.Sprintf("%08x%s", port, hvsockTemplate), nil
}

// HvsockPort is the inverse of HvsockServiceID: the vsock port a service
// ID stands for. Braces and upper case are accepted; ok is false for a GUID
// outside the vsock template.
func HvsockPort(id string) (port uint32, ok bool) {
	id = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(id, "{"), "}"))
	head, found := strings.CutSuffix(id, hvsockTemplate)
	if !found || len(head) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(head, 16, 32)
	if err != nil || n > MaxHvsockPort {
		return 0, false
	}
	return uint32(n), true
}
