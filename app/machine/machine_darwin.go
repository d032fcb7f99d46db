package machine

// DefaultDriver names the hypervisor driver Berth uses on this OS: Apple's
// Virtualization framework (app/machine/vz). The caller (app/desktop, the
// berth CLI) maps the name to the driver package explicitly, as this
// package cannot import its drivers.
func DefaultDriver() (DriverName, error) { return DriverVZ, nil }
