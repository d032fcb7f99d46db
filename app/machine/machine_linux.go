package machine

// DefaultDriver names the hypervisor driver Berth uses on this OS. The
// caller (app/desktop) maps the name to the driver package explicitly.
func DefaultDriver() (string, error) { return "qemu", nil }
