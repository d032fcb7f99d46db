package hostlink_test

import (
	"path/filepath"
	"testing"

	"github.com/mdlayher/vsock"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/hostlink/linktest"
)

func transports() []linktest.Transport {
	return []linktest.Transport{
		{Name: "serial", Setup: func(t testing.TB) (hostlink.Dialer, linktest.GuestEnd) {
			path := filepath.Join(t.TempDir(), "link.sock")
			g := linktest.StartSerialGuest(t, path, linktest.Services())
			d := hostlink.NewSerial(path, nil)
			t.Cleanup(func() { d.Close() })
			return d, linktest.GuestEnd{Stop: g.Stop, Start: func() { g.Start(t) }}
		}},
		{Name: "vsock", Setup: func(t testing.TB) (hostlink.Dialer, linktest.GuestEnd) {
			ln, err := vsock.ListenContextID(vsock.Local, 0, nil)
			if err != nil {
				t.Skipf("vsock transport not available on this host: %v", err)
			}
			probe, err := vsock.Dial(vsock.Local, ln.Addr().(*vsock.Addr).Port, nil)
			if err != nil {
				ln.Close()
				t.Skipf("vsock transport not available on this host (no loopback transport): %v", err)
			}
			probe.Close()
			ln.Close()
			t.Skip("vsock loopback works here but the per-port guest stand-in is not written yet")
			return nil, linktest.GuestEnd{}
		}},
	}
}

// TestConformance runs the channel suite against every transport available
// here. The real guest over real virtio-serial runs it in app/machine/qemu.
func TestConformance(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.Name, func(t *testing.T) { linktest.Run(t, tr) })
	}
}
