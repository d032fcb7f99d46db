//go:build darwin

package vz

import (
	"net"
	"reflect"
	"testing"

	avf "github.com/Code-Hex/vz/v3"
)

// TestVZConnectionShape: halfCloseable reaches the socket inside vz's
// VirtioSocketConnection through its field rawConn; a vz that renames it
// fails here rather than losing half-close quietly.
func TestVZConnectionShape(t *testing.T) {
	f, ok := reflect.TypeFor[avf.VirtioSocketConnection]().FieldByName("rawConn")
	if !ok || f.Type != reflect.TypeFor[net.Conn]() {
		t.Fatalf("vz.VirtioSocketConnection has no rawConn net.Conn field (%v)", f.Type)
	}
}

func TestFromVZ(t *testing.T) {
	for s, want := range map[avf.VirtualMachineState]hvState{
		avf.VirtualMachineStateStopped:   hvStopped,
		avf.VirtualMachineStateRunning:   hvRunning,
		avf.VirtualMachineStatePaused:    hvPaused,
		avf.VirtualMachineStateError:     hvError,
		avf.VirtualMachineStateStarting:  hvStarting,
		avf.VirtualMachineStatePausing:   hvPausing,
		avf.VirtualMachineStateResuming:  hvResuming,
		avf.VirtualMachineStateStopping:  hvStopping,
		avf.VirtualMachineStateSaving:    hvSaving,
		avf.VirtualMachineStateRestoring: hvRestoring,
	} {
		if got := fromVZ(s); got != want {
			t.Errorf("fromVZ(%v) = %s, want %s", s, got, want)
		}
	}
}

// TestProbeHost runs on a real Mac: the driver is available there.
func TestProbeHost(t *testing.T) {
	h, err := probeHost()
	if err != nil {
		t.Skipf("not available on this Mac: %v", err)
	}
	if h.MaxCPUs == 0 || h.MaxMemory == 0 {
		t.Fatalf("limits not read: %+v", h)
	}
}
