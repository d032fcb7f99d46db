package qemu

import (
	"net"
	"testing"

	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/app/machine/machinetest"
)

// TestConformanceRealVM runs the machine conformance suite (machinetest)
// on the QEMU driver with the real VM image: start, each channel port,
// the share, a restart that keeps the data disk, stop. QEMU's user network
// lets the guest reach the host's loopback at slirpHost, so the channel
// suite also runs through the real VM: host end, virtio-serial (or
// vhost-vsock), the guest agent's yamux server, mux and tunnel.
func TestConformanceRealVM(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := machinetest.Image(t, "")
	machinetest.Run(t, machinetest.Driver{
		Name:   "qemu",
		Kernel: kernel,
		Initrd: initrd,
		New: func(t testing.TB, cfg machine.Config) (machine.VM, error) {
			return Driver{}.New(cfg)
		},
		HostListen: func(t testing.TB) (net.Listener, string) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return ln, slirpHost
		},
	})
}
