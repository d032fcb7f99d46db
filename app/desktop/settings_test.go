package desktop

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/settings"
)

func TestLoadSettings(t *testing.T) {
	share := t.TempDir()
	h := settings.Host{OS: "linux", CPUs: 4, MemoryMiB: 8192, Home: share}
	st := &settings.Store{Path: filepath.Join(t.TempDir(), settings.FileName), Host: h}
	d := settings.Defaults(h)
	d.Resources.CPUs, d.Resources.MemoryMiB, d.Resources.DiskGiB = 3, 3072, 20
	if err := st.Save(d, false); err != nil {
		t.Fatal(err)
	}
	doc, bad, err := LoadSettings(st)
	if err != nil || bad != nil {
		t.Fatal(bad, err)
	}
	s := VMSettings(doc)
	if s.CPUs != 3 || s.MemoryMiB != 3072 || s.DiskBytes != 20<<30 || len(s.Shares) != 1 || s.Shares[0] != share {
		t.Errorf("VM settings %+v", s)
	}
	cfg := MachineConfig(Layout{Home: "/h"}, s)
	if cfg.CPUs != 3 || cfg.MemoryMiB != 3072 || cfg.Disk.SizeBytes != 20<<30 || cfg.Shares[0].HostPath != share {
		t.Errorf("machine config %+v", cfg)
	}

	// A host smaller than the settings: the VM is not started, the key named.
	st.Host.CPUs = 2
	if _, _, err := LoadSettings(st); err == nil || !strings.Contains(err.Error(), "resources.cpus: 3 is more than the host's 2 CPUs") {
		t.Errorf("small host: %v", err)
	}
}
