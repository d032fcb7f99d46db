package pid1

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseShareParams(t *testing.T) {
	base := Params{Disk: DefaultDisk, Net: NetDHCP}
	with := func(f func(p *Params)) Params {
		p := base
		f(&p)
		return p
	}
	runCmdlineCases(t, []cmdlineCase{
		{"one device, directories", "berth.sharedev=berth berth.shares=share0=/Users,share1=/Volumes",
			with(func(p *Params) {
				p.ShareDev = "berth"
				p.Shares = []Share{{"share0", "/Users"}, {"share1", "/Volumes"}}
			}), false},
		{"device named after the shares", "berth.shares=share0=/Users berth.sharedev=berth",
			with(func(p *Params) { p.ShareDev = "berth"; p.Shares = []Share{{"share0", "/Users"}} }), false},
		{"device without shares", "berth.sharedev=berth", with(func(p *Params) { p.ShareDev = "berth" }), false},
		{"directory with a slash", "berth.sharedev=berth berth.shares=a/b=/Users", Params{}, true},
		{"directory dot dot", "berth.sharedev=berth berth.shares=..=/Users", Params{}, true},
		{"directory dot", "berth.sharedev=berth berth.shares=.=/Users", Params{}, true},
		{"empty device", "berth.sharedev=", Params{}, true},
		{"device with a space-free comma", "berth.sharedev=a,b", Params{}, true},
		{"rosetta", "berth.rosetta=rosetta", with(func(p *Params) { p.Rosetta = "rosetta" }), false},
		{"empty rosetta", "berth.rosetta=", Params{}, true},
		{"bad rosetta tag", "berth.rosetta=../x", Params{}, true},
		{"fuse shares", "berth.fuse=users=/run/host/c/Users,d=/run/host/d berth.fusero=d",
			with(func(p *Params) {
				p.FUSE = []FUSEShare{{Tag: "users", Path: "/run/host/c/Users"}, {Tag: "d", Path: "/run/host/d", ReadOnly: true}}
			}), false},
		{"fusero first", "berth.fusero=users berth.fuse=users=/run/host/c/Users",
			with(func(p *Params) { p.FUSE = []FUSEShare{{Tag: "users", Path: "/run/host/c/Users", ReadOnly: true}} }), false},
		{"empty fusero", "berth.fuse=users=/u berth.fusero=", with(func(p *Params) { p.FUSE = []FUSEShare{{Tag: "users", Path: "/u"}} }), false},
		{"fusero of no share", "berth.fuse=users=/u berth.fusero=other", Params{}, true},
		{"fuse tag twice", "berth.fuse=a=/u,a=/v", Params{}, true},
		{"fuse relative path", "berth.fuse=a=u", Params{}, true},
		{"fuse reserved path", "berth.fuse=a=/var/lib/berth", Params{}, true},
		{"fuse bad tag", "berth.fuse=a:b=/u", Params{}, true},
	})
}

// TestMountShareDirs mounts a multiple-directory share with a tmpfs
// standing in for the virtiofs device.
func TestMountShareDirs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs and bind mounts needs root")
	}
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	users, volumes, missing, link := filepath.Join(dir, "Users"), filepath.Join(dir, "deep", "Volumes"), filepath.Join(dir, "missing"), filepath.Join(dir, "link")
	device := func(at string) error {
		if err := unix.Mount("tmpfs", at, "tmpfs", 0, "mode=0755"); err != nil {
			return err
		}
		for _, d := range []string{"share0", "share1"} {
			if err := os.Mkdir(filepath.Join(at, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(at, "share0", "hello"), []byte("from the host"), 0o644); err != nil {
			return err
		}
		// A symlink at the device's root must not be followed.
		return os.Symlink("/etc", filepath.Join(at, "share3"))
	}
	shares := []Share{{"share0", users}, {"share1", volumes}, {"share2", missing}, {"share3", link}}
	mounted, err := mountShareDirs(device, staging, shares, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() {
		for _, m := range slices.Backward(mounted) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", m, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{staging, users, volumes}; !reflect.DeepEqual(mounted, want) {
		t.Fatalf("mounted %q, want %q", mounted, want)
	}
	if b, err := os.ReadFile(filepath.Join(users, "hello")); err != nil || string(b) != "from the host" {
		t.Fatalf("read through the share: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(volumes, "new"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(staging, "share1", "new")); err != nil {
		t.Fatalf("a file written at the share's path is not in the device's directory: %v", err)
	}
	if _, err := os.Lstat(link); err == nil {
		if fi, _ := os.Lstat(filepath.Join(link, "passwd")); fi != nil {
			t.Fatalf("the symlinked directory was mounted")
		}
	}

	// A device that does not mount mounts nothing.
	if got, err := mountShareDirs(func(string) error { return unix.ENODEV }, filepath.Join(dir, "staging2"), shares, slog.Default()); err == nil || got != nil {
		t.Fatalf("failed device: %q, %v", got, err)
	}
}
