package desktop

import (
	"fmt"

	"github.com/berthdesktop/berth/settings"
)

// VMSettings takes the VM's resources from the user's settings document:
// CPUs, memory, the disk size and the shared folders. The VM image folder
// is not a setting; the caller finds it (FindVMDir).
func VMSettings(d *settings.Document) Settings {
	return Settings{
		CPUs:      d.Resources.CPUs,
		MemoryMiB: d.Resources.MemoryMiB,
		DiskBytes: int64(d.Resources.DiskGiB) << 30,
		Shares:    append([]string(nil), d.FileSharing.Paths...),
		SwapMiB:   d.Resources.SwapMiB,
		Subnet:    d.Resources.VMSubnet,
	}
}

// LoadSettings reads the settings store and checks the document against
// the host. bad, when set, tells that the stored file no longer parsed: it
// was kept aside and the defaults are used; the caller tells the user.
func LoadSettings(st *settings.Store) (d *settings.Document, bad *settings.BadFile, err error) {
	d, bad, err = st.Load()
	if err != nil {
		return nil, nil, err
	}
	if err := settings.Validate(d, st.Host); err != nil {
		return nil, bad, fmt.Errorf("the settings in %s are not valid here (change them with `berth settings set` or `berth settings edit`):\n%w", st.Path, err)
	}
	return d, bad, nil
}
