package hostlink

import (
	"testing"

	winio "github.com/Microsoft/go-winio"
)

// TestHvsockServiceIDMatchesWinio checks the portable mapping against
// go-winio's own VsockServiceID.
func TestHvsockServiceIDMatchesWinio(t *testing.T) {
	for _, port := range []uint32{0, 1024, 1025, 1026, 1027, 1028, 2375, MaxHvsockPort} {
		s, err := HvsockServiceID(port)
		if err != nil {
			t.Fatal(err)
		}
		if want := winio.VsockServiceID(port).String(); s != want {
			t.Errorf("port %d: %s, go-winio says %s", port, s, want)
		}
	}
}

func TestNewHvsock(t *testing.T) {
	for _, id := range []string{"{9A9C1B5E-3C1F-4D4B-9E0B-5C6A7B8C9D0E}", "9a9c1b5e-3c1f-4d4b-9e0b-5c6a7b8c9d0e"} {
		d, err := NewHvsock(id)
		if err != nil {
			t.Fatalf("NewHvsock(%q): %v", id, err)
		}
		if got := d.VMID.String(); got != "9a9c1b5e-3c1f-4d4b-9e0b-5c6a7b8c9d0e" {
			t.Errorf("NewHvsock(%q).VMID = %s", id, got)
		}
	}
	if _, err := NewHvsock("not-a-guid"); err == nil {
		t.Error("NewHvsock accepted a bad ID")
	}
}

var _ Dialer = (*HvsockDialer)(nil)
