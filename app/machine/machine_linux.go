package machine

// DefaultDriver names the hypervisor driver Berth uses on this OS. The
// caller (app/desktop) maps the name to the driver package explicitly, as
// this package cannot import its drivers.
func DefaultDriver() (DriverName, error) { return DriverQEMU, nil }
