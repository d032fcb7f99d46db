package hostlink

import "testing"

func TestHvsockServiceID(t *testing.T) {
	tests := []struct {
		port uint32
		want string
	}{
		// The channel's ports (docs/CHANNEL.md).
		{2375, "00000947-facb-11e6-bd58-64006a7986d3"},
		{1024, "00000400-facb-11e6-bd58-64006a7986d3"},
		{1025, "00000401-facb-11e6-bd58-64006a7986d3"},
		{1026, "00000402-facb-11e6-bd58-64006a7986d3"},
		{1027, "00000403-facb-11e6-bd58-64006a7986d3"},
		// The example of Linux's Documentation/virt/hyperv/vsock and
		// Microsoft's "Make your own integration services": port 0x808.
		{0x808, "00000808-facb-11e6-bd58-64006a7986d3"},
		{0, "00000000-facb-11e6-bd58-64006a7986d3"},
		{MaxHvsockPort, "7fffffff-facb-11e6-bd58-64006a7986d3"},
	}
	for _, tc := range tests {
		got, err := HvsockServiceID(tc.port)
		if err != nil || got != tc.want {
			t.Errorf("HvsockServiceID(%d) = %q, %v; want %q", tc.port, got, err, tc.want)
		}
		back, ok := HvsockPort(got)
		if !ok || back != tc.port {
			t.Errorf("HvsockPort(%q) = %d, %v; want %d", got, back, ok, tc.port)
		}
	}
	if _, err := HvsockServiceID(MaxHvsockPort + 1); err == nil {
		t.Error("HvsockServiceID accepted an ephemeral port")
	}
}

func TestHvsockPort(t *testing.T) {
	tests := []struct {
		id   string
		port uint32
		ok   bool
	}{
		{"{00000947-FACB-11E6-BD58-64006A7986D3}", 2375, true},
		{"00000947-facb-11e6-bd58-64006a7986d3", 2375, true},
		{"80000000-facb-11e6-bd58-64006a7986d3", 0, false}, // ephemeral
		{"947-facb-11e6-bd58-64006a7986d3", 0, false},
		{"0000094g-facb-11e6-bd58-64006a7986d3", 0, false},
		{"00000947-facb-11e6-bd58-64006a7986d4", 0, false},
		{"e0e16197-dd56-4a10-9195-5ee7a155a838", 0, false}, // HV_GUID_LOOPBACK
		{"", 0, false},
	}
	for _, tc := range tests {
		port, ok := HvsockPort(tc.id)
		if port != tc.port || ok != tc.ok {
			t.Errorf("HvsockPort(%q) = %d, %v; want %d, %v", tc.id, port, ok, tc.port, tc.ok)
		}
	}
}

func FuzzHvsockPort(f *testing.F) {
	f.Add("00000947-facb-11e6-bd58-64006a7986d3")
	f.Add("{7FFFFFFF-facb-11e6-bd58-64006a7986d3}")
	f.Fuzz(func(t *testing.T, id string) {
		port, ok := HvsockPort(id)
		if !ok {
			return
		}
		again, err := HvsockServiceID(port)
		if err != nil {
			t.Fatalf("HvsockPort(%q) = %d, which HvsockServiceID refuses: %v", id, port, err)
		}
		if p2, ok2 := HvsockPort(again); !ok2 || p2 != port {
			t.Fatalf("round trip of %q: %q -> %d, %v", id, again, p2, ok2)
		}
	})
}
