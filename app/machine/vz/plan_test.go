package vz

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

func testConfig(t *testing.T) machine.Config {
	dir := t.TempDir()
	return machine.Config{
		Name:      "berth",
		CPUs:      2,
		MemoryMiB: 2048,
		Disk:      machine.Disk{Path: filepath.Join(dir, "data.img"), SizeBytes: 1 << 30},
		Shares: []machine.Share{
			{Tag: "share0", HostPath: "/Users", GuestPath: "/Users"},
			{Tag: "share1", HostPath: "/Volumes", GuestPath: "/Volumes", ReadOnly: true},
		},
		Kernel:         filepath.Join(dir, "vmlinuz"),
		Initrd:         filepath.Join(dir, "initrd.img"),
		Cmdline:        []string{"berth.hostos=darwin"},
		ConsoleLogPath: filepath.Join(dir, "log", "console.log"),
		StateDir:       filepath.Join(dir, "run"),
		Arch:           machine.ArchARM64,
	}
}

func appleSilicon() hostInfo {
	return hostInfo{
		Arch: machine.ArchARM64, MacOS: macOSVersion{14, 5}, Rosetta: rosettaInstalled,
		MinCPUs: 1, MaxCPUs: 8, MinMemory: 128 << 20, MaxMemory: 16 << 30,
	}
}

func TestParseMacOSVersion(t *testing.T) {
	tests := []struct {
		in   string
		want macOSVersion
		ok   bool
	}{
		{"14.5", macOSVersion{14, 5}, true},
		{"13.6.7\n", macOSVersion{13, 6}, true},
		{"15", macOSVersion{15, 0}, true},
		{"", macOSVersion{}, false},
		{"x.1", macOSVersion{}, false},
		{"14.y", macOSVersion{}, false},
	}
	for _, tc := range tests {
		got, err := parseMacOSVersion(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMacOSVersion(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckHost(t *testing.T) {
	h := appleSilicon()
	if err := checkHost(h); err != nil {
		t.Fatal(err)
	}
	h.MacOS = macOSVersion{12, 7}
	if err := checkHost(h); !errors.Is(err, machine.ErrNotAvailable) || !strings.Contains(err.Error(), "12.7") {
		t.Fatalf("macOS 12: %v", err)
	}
	h = appleSilicon()
	h.Translated = true
	if err := checkHost(h); !errors.Is(err, machine.ErrNotAvailable) || !strings.Contains(err.Error(), "Rosetta") {
		t.Fatalf("translated: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*machine.Config, *hostInfo)
		rosetta bool
		want    error  // nil: valid
		field   string // in the message
	}{
		{"valid", func(*machine.Config, *hostInfo) {}, false, nil, ""},
		{"host arch", func(c *machine.Config, _ *hostInfo) { c.Arch = "" }, false, nil, ""},
		{"other arch", func(c *machine.Config, _ *hostInfo) { c.Arch = machine.ArchAMD64 }, false, machine.ErrInvalidConfig, "Arch"},
		{"too many cpus", func(c *machine.Config, _ *hostInfo) { c.CPUs = 9 }, false, machine.ErrInvalidConfig, "CPUs"},
		{"limits unknown", func(c *machine.Config, h *hostInfo) { c.CPUs = 64; h.MaxCPUs = 0; h.MaxMemory = 0 }, false, nil, ""},
		{"too much memory", func(c *machine.Config, _ *hostInfo) { c.MemoryMiB = 32 << 10 }, false, machine.ErrInvalidConfig, "MemoryMiB"},
		{"share tag with slash", func(c *machine.Config, _ *hostInfo) { c.Shares[1].Tag = "a/b" }, false, machine.ErrInvalidConfig, "Shares[1].Tag"},
		{"share tag dot", func(c *machine.Config, _ *hostInfo) { c.Shares[0].Tag = ".." }, false, machine.ErrInvalidConfig, "Shares[0].Tag"},
		{"share tag too long", func(c *machine.Config, _ *hostInfo) { c.Shares[0].Tag = strings.Repeat("a", 37) }, false, machine.ErrInvalidConfig, "Shares[0].Tag"},
		{"rosetta", func(*machine.Config, *hostInfo) {}, true, nil, ""},
		{"rosetta not installed", func(_ *machine.Config, h *hostInfo) { h.Rosetta = rosettaNotInstalled }, true, machine.ErrNotAvailable, "softwareupdate"},
		{"rosetta unsupported", func(_ *machine.Config, h *hostInfo) { h.Rosetta = rosettaNotSupported }, true, machine.ErrNotAvailable, "Apple silicon"},
		{"rosetta on intel", func(c *machine.Config, h *hostInfo) {
			c.Arch, h.Arch, h.Rosetta = machine.ArchAMD64, machine.ArchAMD64, rosettaNotSupported
		}, true, nil, ""},
		{"rosetta not installed, not asked", func(_ *machine.Config, h *hostInfo) { h.Rosetta = rosettaNotInstalled }, false, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, h := testConfig(t), appleSilicon()
			tc.mod(&c, &h)
			err := checkConfig(c, h, tc.rosetta)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v; want %v naming %s", err, tc.want, tc.field)
			}
		})
	}
}

func TestKernelCmdline(t *testing.T) {
	c := testConfig(t)
	now := time.Unix(1700000000, 0)
	got := kernelCmdline(c, false, now)
	want := "console=hvc0 quiet panic=-1 berth.link=vsock berth.time=1700000000 " +
		"berth.sharedev=berth berth.shares=share0=/Users,share1=/Volumes berth.hostos=darwin"
	if got != want {
		t.Fatalf("cmdline\n got %s\nwant %s", got, want)
	}
	c.Shares, c.Cmdline = nil, nil
	got = kernelCmdline(c, true, now)
	want = "console=hvc0 quiet panic=-1 berth.link=vsock berth.time=1700000000 berth.rosetta=rosetta"
	if got != want {
		t.Fatalf("cmdline without shares, with Rosetta\n got %s\nwant %s", got, want)
	}
}

func TestMakePlan(t *testing.T) {
	c := testConfig(t)
	p := makePlan(c, true, time.Unix(1, 0))
	if p.CPUs != 2 || p.MemoryBytes != 2048<<20 || p.Disk != c.Disk.Path || p.ConsoleLog != c.ConsoleLogPath || !p.Rosetta {
		t.Fatalf("plan %+v", p)
	}
	want := []planShare{{"share0", "/Users", false}, {"share1", "/Volumes", true}}
	if len(p.Shares) != len(want) {
		t.Fatalf("shares %+v", p.Shares)
	}
	for i := range want {
		if p.Shares[i] != want[i] {
			t.Fatalf("share %d: %+v, want %+v", i, p.Shares[i], want[i])
		}
	}
	if !strings.Contains(p.Cmdline, "berth.rosetta=rosetta") || !strings.Contains(p.Cmdline, "berth.sharedev=berth") {
		t.Fatalf("cmdline %s", p.Cmdline)
	}
}

func TestMACAddress(t *testing.T) {
	a, b := macAddress("/Users/a/.berth/run"), macAddress("/Users/b/.berth/run")
	if len(a) != 6 || a.String() != macAddress("/Users/a/.berth/run").String() {
		t.Fatalf("address %s is not stable", a)
	}
	if a.String() == b.String() {
		t.Fatalf("two homes share %s", a)
	}
	for _, mac := range []net.HardwareAddr{a, b} {
		if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
			t.Fatalf("%s is not a locally administered unicast address", mac)
		}
	}
}

func writeKernel(t *testing.T, head []byte) string {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, head, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func arm64Image() []byte {
	b := make([]byte, 128)
	copy(b, "MZ")
	copy(b[0x38:], "ARM\x64")
	return b
}

func TestCheckKernel(t *testing.T) {
	zboot := make([]byte, 128)
	copy(zboot, "MZ\x00\x00zimg")
	tests := []struct {
		name string
		head []byte
		arch machine.Arch
		ok   bool
		msg  string
	}{
		{"arm64 Image", arm64Image(), machine.ArchARM64, true, ""},
		{"gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, machine.ArchARM64, false, "gzip"},
		{"zboot", zboot, machine.ArchARM64, false, "zboot"},
		{"not an Image", make([]byte, 128), machine.ArchARM64, false, "not an arm64 Image"},
		{"short", []byte("MZ"), machine.ArchARM64, false, "not an arm64 Image"},
		{"amd64 bzImage", []byte{0x1f, 0x8b}, machine.ArchAMD64, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKernel(writeKernel(t, tc.head), tc.arch)
			if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, machine.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.msg))) {
				t.Fatalf("checkKernel: %v; want ok %v (%s)", err, tc.ok, tc.msg)
			}
		})
	}
	if err := checkKernel(filepath.Join(t.TempDir(), "none"), machine.ArchARM64); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing kernel: %v", err)
	}
}

// TestCheckKernelImage checks the VM image's own arm64 kernel when it has
// been built (make vmimage).
func TestCheckKernelImage(t *testing.T) {
	p := filepath.Join("..", "..", "..", "build", "vm", "arm64", "vmlinuz")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no arm64 VM image here (make vmimage builds it): %v", err)
	}
	if err := checkKernel(p, machine.ArchARM64); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureDisk(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "data.img")
	grew, err := ensureDisk(p, 1<<20)
	if err != nil || grew {
		t.Fatalf("create: grew %v, %v", grew, err)
	}
	if grew, err = ensureDisk(p, 4<<20); err != nil || !grew {
		t.Fatalf("grow: grew %v, %v", grew, err)
	}
	if grew, err = ensureDisk(p, 2<<20); err != nil || grew {
		t.Fatalf("shrink: grew %v, %v", grew, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != 4<<20 {
		t.Fatalf("size %v, %v", fi.Size(), err)
	}
	if _, err := ensureDisk(filepath.Dir(p), 1); err == nil {
		t.Fatal("a folder as the disk was accepted")
	}
}
