//go:build linux

package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
)

// fakeMounts records mount(2) and umount(2) calls instead of making them.
type fakeMounts struct {
	mounted map[string]string // target -> "type device data"
	calls   int
}

func openFake(t *testing.T, root string) (*Store, *fakeMounts) {
	t.Helper()
	s, err := Open(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMounts{mounted: map[string]string{}}
	s.mountFn = func(source, target, fstype string, flags uintptr, data string) error {
		fm.calls++
		fm.mounted[target] = fstype + " " + source + " " + data
		return nil
	}
	s.isMounted = func(dir string) (bool, error) {
		_, ok := fm.mounted[dir]
		return ok, nil
	}
	s.unmountFn = func(target string) error {
		delete(fm.mounted, target)
		return nil
	}
	return s, fm
}

func names(t *testing.T, s *Store, f api.Filters) []string {
	t.Helper()
	resp, err := s.VolumeList(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range resp.Volumes {
		out = append(out, v.Name)
	}
	return out
}

func TestStoreLifecycle(t *testing.T) {
	root := t.TempDir()
	s, _ := openFake(t, root)
	v, err := s.Create("data", "", nil, map[string]string{"team": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(root, "data", "_data") || v.Driver != "local" || v.Scope != "local" {
		t.Errorf("created %+v", v)
	}
	again, err := s.Create("data", "local", nil, nil)
	if err != nil || again.Labels["team"] != "a" {
		t.Errorf("second create returns the existing volume: %+v %v", again, err)
	}
	anon, err := s.Create("", "", nil, map[string]string{AnonymousLabel: ""})
	if err != nil || len(anon.Name) != 64 {
		t.Fatalf("anonymous %+v %v", anon, err)
	}
	for _, bad := range []string{"a", "a/b", "-x", "x y"} {
		if _, err := s.Create(bad, "", nil, nil); err == nil || !strings.Contains(err.Error(), "includes invalid characters") {
			t.Errorf("Create(%q) = %v", bad, err)
		}
	}
	var nf interface{ NotFound() }
	if _, err := s.Create("x1", "nfs-plugin", nil, nil); !errors.As(err, &nf) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := s.Create("x2", "", map[string]string{"bogus": "1"}, nil); err == nil || !strings.Contains(err.Error(), `invalid option: "bogus"`) {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := s.Create("x3", "", map[string]string{"type": "tmpfs"}, nil); err == nil || !strings.Contains(err.Error(), `"device"`) {
		t.Errorf("type without device: %v", err)
	}

	if err := s.Reference("data", "c1"); err != nil {
		t.Fatal(err)
	}
	var cf interface{ Conflict() }
	if err := s.Remove("data", false); !errors.As(err, &cf) || !strings.Contains(err.Error(), "remove data: volume is in use - [c1]") {
		t.Errorf("remove in use: %v", err)
	}
	if got := names(t, s, api.Filters{"dangling": {"true"}}); !slices.Equal(got, []string{anon.Name}) {
		t.Errorf("dangling %v", got)
	}
	if got := names(t, s, api.Filters{"label": {"team=a"}}); !slices.Equal(got, []string{"data"}) {
		t.Errorf("label filter %v", got)
	}
	if got := names(t, s, api.Filters{"name": {"dat"}}); !slices.Equal(got, []string{"data"}) {
		t.Errorf("name filter %v", got)
	}
	if _, err := s.VolumeList(context.Background(), api.Filters{"dangling": {"maybe"}}); err == nil {
		t.Errorf("bad dangling value accepted")
	}

	// References live in memory; metadata survives a reopen.
	s2, _ := openFake(t, root)
	if got := s2.Names(); !slices.Equal(got, []string{anon.Name, "data"}) && !slices.Equal(got, []string{"data", anon.Name}) {
		t.Errorf("after reopen: %v", got)
	}
	rep, err := s2.VolumePrune(context.Background(), api.Filters{})
	if err != nil || !slices.Equal(rep.VolumesDeleted, []string{anon.Name}) {
		t.Errorf("prune removes anonymous only: %+v %v", rep, err)
	}
	if err := s2.Reference("data", "c1"); err != nil {
		t.Fatal(err)
	}
	rep, _ = s2.VolumePrune(context.Background(), api.Filters{"all": {"true"}})
	if len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune removed a referenced volume: %v", rep.VolumesDeleted)
	}
	s2.Dereference("data", "c1")
	if err := s2.Remove("data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); !os.IsNotExist(err) {
		t.Errorf("volume dir left: %v", err)
	}
	if err := s2.Remove("data", true); err != nil {
		t.Errorf("forced remove of a missing volume: %v", err)
	}
	if err := s2.Remove("data", false); !errors.As(err, &nf) || err.Error() != "remove data: no such volume" {
		t.Errorf("remove missing: %v", err)
	}
}

func TestStoreDeviceMounts(t *testing.T) {
	s, fm := openFake(t, t.TempDir())
	if _, err := s.Create("tv", "", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,ro,noexec"}, nil); err != nil {
		t.Fatal(err)
	}
	dir, populated, err := s.Mount("tv", "c1")
	if err != nil || populated {
		t.Fatalf("first mount: %v %v", populated, err)
	}
	if fm.mounted[dir] != "tmpfs tmpfs size=1m" {
		t.Errorf("mounted %q", fm.mounted[dir])
	}
	if _, populated, err := s.Mount("tv", "c2"); err != nil || fm.calls != 1 || !populated {
		t.Errorf("second user mounted again or was told to copy up too: calls=%d populated=%v err=%v", fm.calls, populated, err)
	}
	if err := s.MarkPopulated("tv"); err != nil {
		t.Fatal(err)
	}
	s.Unmount("tv", "c1")
	if _, ok := fm.mounted[dir]; !ok {
		t.Errorf("unmounted while c2 still uses it")
	}
	s.Unmount("tv", "c2")
	if _, ok := fm.mounted[dir]; ok {
		t.Errorf("still mounted after the last user")
	}
	if _, populated, _ := s.Mount("tv", "c3"); !populated {
		t.Errorf("populated flag lost")
	}
}

func TestParseMountOptions(t *testing.T) {
	flags, data := parseMountOptions("rw,nosuid,size=10m,uid=1000,noexec,exec,bind")
	if data != "size=10m,uid=1000" {
		t.Errorf("data %q", data)
	}
	if flags&0x2 == 0 /* MS_NOSUID */ || flags&0x8 != 0 /* MS_NOEXEC cleared by exec */ || flags&0x1000 == 0 /* MS_BIND */ {
		t.Errorf("flags %#x", flags)
	}
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("size=1m,ro")
	f.Add(",,,bind,,rbind")
	f.Fuzz(func(t *testing.T, o string) {
		_, data := parseMountOptions(o)
		for _, d := range strings.Split(data, ",") {
			if _, isFlag := mountFlags[d]; isFlag {
				t.Fatalf("flag %q left in data %q", d, data)
			}
		}
	})
}

func FuzzVolumeFilters(f *testing.F) {
	f.Add("label", "a=b")
	f.Add("dangling", "true")
	f.Fuzz(func(t *testing.T, key, value string) {
		s, _ := openFake(t, t.TempDir())
		_, _ = s.VolumeList(context.Background(), api.Filters{key: {value}})
		_, _ = s.VolumePrune(context.Background(), api.Filters{key: {value}})
	})
}
