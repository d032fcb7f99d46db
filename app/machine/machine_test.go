package machine

import (
	"errors"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{
		Name:      "berth",
		CPUs:      2,
		MemoryMiB: 2048,
		Disk:      Disk{Path: "/h/.berth/data.img", SizeBytes: 64 << 30},
		Shares:    []Share{{Tag: "home", HostPath: "/home/u", GuestPath: "/home/u"}},
		Kernel:    "/k/vmlinuz",
		StateDir:  "/h/.berth/run",
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		field string // "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"arm64", func(c *Config) { c.Arch = ArchARM64 }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "Name"},
		{"name with space", func(c *Config) { c.Name = "a b" }, "Name"},
		{"zero cpus", func(c *Config) { c.CPUs = 0 }, "CPUs"},
		{"tiny memory", func(c *Config) { c.MemoryMiB = 64 }, "MemoryMiB"},
		{"no kernel", func(c *Config) { c.Kernel = "" }, "Kernel"},
		{"disk without size", func(c *Config) { c.Disk.SizeBytes = 0 }, "Disk.SizeBytes"},
		{"no state dir", func(c *Config) { c.StateDir = "" }, "StateDir"},
		{"unknown arch", func(c *Config) { c.Arch = "riscv64" }, "Arch"},
		{"duplicate tag", func(c *Config) { c.Shares = append(c.Shares, c.Shares[0]) }, "Shares[1].Tag"},
		{"tag with comma", func(c *Config) { c.Shares[0].Tag = "a,b" }, "Shares[0].Tag"},
		{"relative host path", func(c *Config) { c.Shares[0].HostPath = "home" }, "Shares[0].HostPath"},
		{"guest path with comma", func(c *Config) { c.Shares[0].GuestPath = "/a,b" }, "Shares[0].GuestPath"},
		{"cmdline word with space", func(c *Config) { c.Cmdline = []string{"a b"} }, "Cmdline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("error %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
}

func TestDefaultDriver(t *testing.T) {
	name, err := DefaultDriver()
	if err != nil && !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("error %v does not wrap ErrNotAvailable", err)
	}
	if err == nil && name == "" {
		t.Fatal("no driver name and no error")
	}
}
