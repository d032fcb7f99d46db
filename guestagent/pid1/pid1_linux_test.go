package pid1

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	runCmdlineCases(t, []cmdlineCase{
		{"defaults", "console=ttyS0 quiet panic=-1\n", Params{Disk: DefaultDisk, Net: NetDHCP}, false},
		{"all", "console=ttyS0 berth.shares=home=/home/me,tmp0=/tmp/x berth.time=1700000000 berth.disk=/dev/vdb berth.link=serial berth.engine=/usr/bin/e berth.net=auto",
			Params{
				Shares: []Share{{"home", "/home/me"}, {"tmp0", "/tmp/x"}},
				Time:   time.Unix(1700000000, 0),
				Disk:   "/dev/vdb", Link: "serial", Engine: "/usr/bin/e", Net: NetAuto,
			}, false},
		{"empty shares", "berth.shares=", Params{Disk: DefaultDisk, Net: NetDHCP}, false},
		{"share path with equals", "berth.shares=a=/x=y", Params{Disk: DefaultDisk, Net: NetDHCP, Shares: []Share{{"a", "/x=y"}}}, false},
		{"static network", "berth.net=static", Params{Disk: DefaultDisk, Net: NetStatic}, false},
		{"bad network", "berth.net=slaac", Params{}, true},
		{"relative share", "berth.shares=a=home", Params{}, true},
		{"unclean share", "berth.shares=a=/home/../etc", Params{}, true},
		{"share over data root", "berth.shares=a=/var/lib/berth", Params{}, true},
		{"share over a parent of the data root", "berth.shares=a=/var", Params{}, true},
		{"share under proc", "berth.shares=a=/proc/1", Params{}, true},
		{"share without tag", "berth.shares==/x", Params{}, true},
		{"bad time", "berth.time=yesterday", Params{}, true},
		{"negative time", "berth.time=-1", Params{}, true},
		{"disk not under dev", "berth.disk=/tmp/disk", Params{}, true},
		{"bad link", "berth.link=tcp", Params{}, true},
		{"relative engine", "berth.engine=engine", Params{}, true},
	})
}

// cmdlineCase is one kernel command line and what ParseCmdline makes of it.
type cmdlineCase struct {
	name    string
	cmdline string
	want    Params
	wantErr bool
}

// runCmdlineCases runs each case as a subtest: a refused line must fail
// with ErrBadParam, an accepted one give exactly want.
func runCmdlineCases(t *testing.T, tests []cmdlineCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmdline(tt.cmdline)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadParam) {
					t.Errorf("error %v is not ErrBadParam", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add("console=ttyS0 berth.shares=home=/home/me berth.time=1700000000 berth.disk=/dev/vdb berth.link=vsock")
	f.Add("berth.shares=a=/x,b=/y berth.engine=/e")
	f.Add("berth.sharedev=berth berth.shares=share0=/Users berth.rosetta=rosetta")
	f.Add("berth.fuse=users=/run/host/c/Users,d=/d berth.fusero=d")
	f.Fuzz(func(t *testing.T, cmdline string) {
		p, err := ParseCmdline(cmdline)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p.Disk, "/dev/") {
			t.Fatalf("disk %q", p.Disk)
		}
		for _, s := range p.Shares {
			if !filepath.IsAbs(s.Path) || filepath.Clean(s.Path) != s.Path || s.Path == "/" || s.Tag == "" {
				t.Fatalf("share %+v", s)
			}
		}
		if p.ShareDev != "" {
			for _, s := range p.Shares {
				if strings.ContainsAny(s.Tag, "/") || s.Tag == "." || s.Tag == ".." {
					t.Fatalf("directory %q of the share device", s.Tag)
				}
			}
		}
		for _, s := range p.FUSE {
			if !filepath.IsAbs(s.Path) || filepath.Clean(s.Path) != s.Path || !validTag(s.Tag) {
				t.Fatalf("fuse share %+v", s)
			}
		}
	})
}

// superblock builds the 1024 bytes of an ext4 superblock.
func superblock(blocks uint64, logBlock uint32, bit64 bool, clean bool) []byte {
	b := make([]byte, superblockSize)
	binary.LittleEndian.PutUint32(b[4:], uint32(blocks))
	binary.LittleEndian.PutUint32(b[24:], logBlock)
	binary.LittleEndian.PutUint16(b[56:], ext4Magic)
	if clean {
		binary.LittleEndian.PutUint16(b[58:], 1)
	}
	if bit64 {
		binary.LittleEndian.PutUint32(b[0x60:], incompat64bit)
		binary.LittleEndian.PutUint32(b[0x150:], uint32(blocks>>32))
	}
	return b
}

func TestParseSuperblock(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		want    Superblock
		wantErr error
	}{
		{"4k blocks", superblock(262144, 2, false, true), Superblock{262144, 4096, true}, nil},
		{"64bit count", superblock(1<<33+5, 2, true, false), Superblock{1<<33 + 5, 4096, false}, nil},
		{"high bits ignored without 64bit", superblock(1<<33+5, 2, false, true), Superblock{5, 4096, true}, nil},
		{"zeroes", make([]byte, superblockSize), Superblock{}, ErrNoFilesystem},
		{"short", make([]byte, 100), Superblock{}, nil},
		{"absurd block size", superblock(1, 30, false, true), Superblock{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSuperblock(tt.b)
			if tt.want == (Superblock{}) {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestSuperblockOfRealFilesystem reads what mke2fs makes and grows.
func TestSuperblockOfRealFilesystem(t *testing.T) {
	for _, tool := range []string{"mke2fs", "resize2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install e2fsprogs)", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := readSuperblock(img); !errors.Is(err, ErrNoFilesystem) {
		t.Fatalf("blank disk: %v, want ErrNoFilesystem", err)
	}
	if out, err := exec.Command("mke2fs", "-t", "ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v %s", err, out)
	}
	sb, err := readSuperblock(img)
	if err != nil || sb.Bytes() != 64<<20 || !sb.Clean {
		t.Fatalf("superblock %+v (%d bytes), %v", sb, sb.Bytes(), err)
	}
	if NeedsGrow(64<<20, sb) {
		t.Error("an unchanged disk needs growing")
	}
	if !NeedsGrow(128<<20, sb) {
		t.Error("a doubled disk does not need growing")
	}
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("resize2fs", img).CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v %s", err, out)
	}
	if sb, err = readSuperblock(img); err != nil || sb.Bytes() != 128<<20 {
		t.Fatalf("after resize2fs: %+v, %v", sb, err)
	}
}

func FuzzParseSuperblock(f *testing.F) {
	f.Add(superblock(1000, 2, true, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ParseSuperblock(b)
		if err == nil && (sb.BlockSize < 1024 || sb.BlockSize > 65536) {
			t.Fatalf("block size %d", sb.BlockSize)
		}
	})
}

func TestNeedsGrow(t *testing.T) {
	sb := Superblock{BlockCount: 1 << 18, BlockSize: 4096} // 1 GiB
	tests := []struct {
		dev  uint64
		want bool
	}{
		{1 << 30, false},
		{1<<30 + 1<<20, false},
		{1<<30 + 16<<20, true},
		{2 << 30, true},
		{512 << 20, false},
	}
	for _, tt := range tests {
		if got := NeedsGrow(tt.dev, sb); got != tt.want {
			t.Errorf("NeedsGrow(%d) = %v", tt.dev, got)
		}
	}
}

func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestParseInputEvents(t *testing.T) {
	var b []byte
	b = append(b, inputEvent(evKey, keyPower, 1)...)
	b = append(b, inputEvent(0, 0, 0)...)
	b = append(b, inputEvent(evKey, keyPower, 0)...)
	b = append(b, inputEvent(evKey, 30, 1)...)
	evs, err := ParseInputEvents(b)
	if err != nil {
		t.Fatal(err)
	}
	var presses []bool
	for _, e := range evs {
		presses = append(presses, e.IsPowerPress())
	}
	if !reflect.DeepEqual(presses, []bool{true, false, false, false}) {
		t.Errorf("power presses %v", presses)
	}
	if _, err := ParseInputEvents(b[:30]); err == nil {
		t.Error("a partial event was accepted")
	}
}

func FuzzParseInputEvents(f *testing.F) {
	f.Add(inputEvent(evKey, keyPower, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ParseInputEvents(b)
		if err == nil && len(evs)*inputEventSize != len(b) {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
	})
}

func TestEnableLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cpuset cpu io memory hugetlb pids rdma misc\n", "+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc"},
		{"", ""},
		{"\n", ""},
	}
	for _, tt := range tests {
		if got := EnableLine(tt.in); got != tt.want {
			t.Errorf("EnableLine(%q) = %q", tt.in, got)
		}
	}
}

func TestMountPoints(t *testing.T) {
	info := `22 1 0:21 / / rw shared:1 - tmpfs tmpfs rw
23 22 0:5 / /proc rw - proc proc rw
30 22 254:0 / /var/lib/berth rw - ext4 /dev/vda rw
31 22 0:40 / /Users/me/My\040Files rw - virtiofs tag rw
`
	want := []string{"/", "/proc", "/var/lib/berth", "/Users/me/My Files"}
	if got := mountPoints(info); !reflect.DeepEqual(got, want) {
		t.Errorf("mountPoints = %q", got)
	}
	for _, p := range []string{"/", "/proc", "/sys/fs/cgroup", "/dev/pts", "/run"} {
		if !keepMounted(p) {
			t.Errorf("%s would be unmounted at shutdown", p)
		}
	}
	for _, p := range []string{"/var/lib/berth", "/Users/me", "/home/me"} {
		if keepMounted(p) {
			t.Errorf("%s would stay mounted at shutdown", p)
		}
	}
}

func FuzzUnescapeMountinfo(f *testing.F) {
	f.Add(`/a\040b\134c`)
	f.Add(`\`)
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMountinfo(s); len(got) > len(s) {
			t.Fatalf("unescape grew %q to %q", s, got)
		}
	})
}

func TestMemoryInUse(t *testing.T) {
	tests := []struct {
		name, meminfo string
		want          uint64
	}{
		{"guest at ready", "MemTotal: 995356 kB\nMemFree: 903580 kB\nMemAvailable: 837064 kB\nBuffers: 56 kB\nCached: 24836 kB\nShmem: 24792 kB\nSReclaimable: 9396 kB\n",
			(995356 - 903580 - 56 - (24836 - 24792) - 9396) << 10},
		{"empty", "", 0},
		{"free above total", "MemTotal: 10 kB\nMemFree: 20 kB\n", 0},
		{"garbage", "MemTotal: x kB\nfoo\n", 0},
	}
	for _, tt := range tests {
		if got := MemoryInUse(tt.meminfo); got != tt.want {
			t.Errorf("%s: MemoryInUse = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func FuzzMemoryInUse(f *testing.F) {
	f.Add("MemTotal: 100 kB\nMemFree: 50 kB\nCached: 10 kB\nShmem: 20 kB\n")
	f.Fuzz(func(t *testing.T, s string) {
		// Nothing is in use beyond the total.
		var totals []string
		for _, line := range strings.Split(s, "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.TrimSuffix(f[0], ":") == "MemTotal" {
				totals = append(totals, line)
			}
		}
		if got, total := MemoryInUse(s), MemoryInUse(strings.Join(totals, "\n")); got > total {
			t.Fatalf("MemoryInUse = %d above MemTotal %d", got, total)
		}
	})
}

func TestEngineArgs(t *testing.T) {
	got := strings.Join(EngineArgs(Params{}, netip.Addr{}), " ")
	if got != "/berth-agent engine --data-root /var/lib/berth --exec-root /run/berth -H unix:///run/berth/docker.sock -H unix:///var/run/docker.sock --container-proxies" {
		t.Fatalf("no shares: %s", got)
	}
	got = strings.Join(EngineArgs(Params{Engine: "/standin", Shares: []Share{{Tag: "share0", Path: "/Users/me"}, {Tag: "share1", Path: "/tmp/x"}}}, netip.MustParseAddr("10.0.2.2")), " ")
	if !strings.HasPrefix(got, "/standin engine ") || !strings.HasSuffix(got, " --host-gateway-ip 10.0.2.2 --host-docker-internal --container-proxies --shared-paths /Users/me,/tmp/x") {
		t.Fatalf("with shares and a gateway: %s", got)
	}
}
