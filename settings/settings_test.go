package settings

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeFS is a host file system as data: the folders that exist.
type fakeFS map[string]bool

func (f fakeFS) stat(p string) (fs.FileInfo, error) {
	dir, ok := f[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return fakeInfo{dir}, nil
}

type fakeInfo struct{ dir bool }

func (i fakeInfo) Name() string       { return "x" }
func (i fakeInfo) Size() int64        { return 0 }
func (i fakeInfo) Mode() fs.FileMode  { return map[bool]fs.FileMode{true: fs.ModeDir}[i.dir] }
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return i.dir }
func (i fakeInfo) Sys() any           { return nil }

func linuxHost() Host {
	return Host{OS: "linux", CPUs: 8, MemoryMiB: 16384, Home: "/home/u",
		Stat: fakeFS{"/home/u": true, "/home/u/src": true, "/srv": true, "/etc/passwd": false}.stat}
}

func macHost() Host {
	return Host{OS: "darwin", CPUs: 10, MemoryMiB: 32768, Home: "/Users/me",
		Stat: fakeFS{"/Users": true, "/Volumes": true, "/private": true, "/tmp": true, "/var/folders": true, "/Users/me": true}.stat}
}

func windowsHost() Host {
	return Host{OS: "windows", CPUs: 4, MemoryMiB: 8192, Home: `C:\Users\me`,
		Stat: fakeFS{`C:\Users`: true, `D:\src`: true, `C:\Users\me`: true}.stat}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name   string
		h      Host
		shares []string
		cpus   int
		mem    int
		chain  bool
	}{
		{"linux", linuxHost(), []string{"/home/u"}, 2, 2048, false},
		{"darwin", macHost(), []string{"/Users", "/Volumes", "/private", "/tmp", "/var/folders"}, 2, 2048, true},
		{"windows", windowsHost(), []string{`C:\Users`}, 2, 2048, true},
		{"small host", Host{OS: "linux", CPUs: 1, MemoryMiB: 1536, Home: "/h", Stat: fakeFS{"/h": true}.stat}, []string{"/h"}, 1, 768, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Defaults(tt.h)
			if !reflect.DeepEqual(d.FileSharing.Paths, tt.shares) || d.Resources.CPUs != tt.cpus || d.Resources.MemoryMiB != tt.mem ||
				d.Resources.DiskGiB != 64 || d.General.UseKeychain != tt.chain || d.General.CheckForUpdates || d.Proxies.Mode != ProxySystem {
				t.Errorf("defaults %+v", d)
			}
			if err := Validate(d, tt.h); err != nil {
				t.Errorf("the defaults are invalid on their host: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		h      Host
		change func(d *Document)
		want   string // the whole message; "" is valid
	}{
		{"defaults", linuxHost(), func(d *Document) {}, ""},
		{"cpus above host", linuxHost(), func(d *Document) { d.Resources.CPUs = 9 }, "resources.cpus: 9 is more than the host's 8 CPUs"},
		{"cpus zero", linuxHost(), func(d *Document) { d.Resources.CPUs = 0 }, "resources.cpus: must be at least 1, got 0"},
		{"cpus all", linuxHost(), func(d *Document) { d.Resources.CPUs = 8 }, ""},
		{"memory max", linuxHost(), func(d *Document) { d.Resources.MemoryMiB = 15360 }, ""},
		{"memory above max", linuxHost(), func(d *Document) { d.Resources.MemoryMiB = 15361 },
			"resources.memoryMiB: 15361 MiB is more than the 15360 MiB this host can give (16384 MiB, less 1024 MiB kept for the host)"},
		{"memory low", linuxHost(), func(d *Document) { d.Resources.MemoryMiB = 100 }, "resources.memoryMiB: must be at least 512 MiB, got 100"},
		{"swap negative", linuxHost(), func(d *Document) { d.Resources.SwapMiB = -1 }, "resources.swapMiB: must be between 0 and 65536 MiB, got -1"},
		{"disk small", linuxHost(), func(d *Document) { d.Resources.DiskGiB = 1 }, "resources.diskGiB: must be at least 4 GiB, got 1"},
		{"disk path relative", linuxHost(), func(d *Document) { d.Resources.DiskPath = "vm" }, `resources.diskPath: "vm" is not an absolute path`},
		{"subnet", linuxHost(), func(d *Document) { d.Resources.VMSubnet = "192.168.64.0/24" }, ""},
		{"subnet host bits", linuxHost(), func(d *Document) { d.Resources.VMSubnet = "192.168.64.1/24" },
			`resources.vmSubnet: "192.168.64.1/24" is not a network address (192.168.64.0/24 is)`},
		{"subnet v6", linuxHost(), func(d *Document) { d.Resources.VMSubnet = "fd00::/64" }, `resources.vmSubnet: "fd00::/64" is not an IPv4 network such as 192.168.64.0/24`},
		{"share relative", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"src"} }, `fileSharing.paths: "src" is not an absolute path`},
		{"share root", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"/"} }, `fileSharing.paths: "/" is the whole disk; share the folders in it instead`},
		{"share missing", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"/nope"} }, `fileSharing.paths: "/nope" does not exist or cannot be read: file does not exist`},
		{"share a file", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"/etc/passwd"} }, `fileSharing.paths: "/etc/passwd" is not a folder`},
		{"share nested", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"/home/u", "/home/u/src/"} },
			`fileSharing.paths: "/home/u/src/" is inside "/home/u", which is already shared`},
		{"share twice", linuxHost(), func(d *Document) { d.FileSharing.Paths = []string{"/srv", "/srv/"} }, `fileSharing.paths: "/srv/" is listed twice`},
		{"share none", linuxHost(), func(d *Document) { d.FileSharing.Paths = nil }, ""},
		{"mac shares case", macHost(), func(d *Document) { d.FileSharing.Paths = []string{"/Users", "/users/me"} },
			`fileSharing.paths: "/users/me" is inside "/Users", which is already shared`},
		{"windows drive", windowsHost(), func(d *Document) { d.FileSharing.Paths = []string{`D:\`} }, `fileSharing.paths: "D:\\" is the whole disk; share the folders in it instead`},
		{"windows nested", windowsHost(), func(d *Document) { d.FileSharing.Paths = []string{`C:\Users`, `c:/users/me`} },
			`fileSharing.paths: "c:/users/me" is inside "C:\\Users", which is already shared`},
		{"windows unix path", windowsHost(), func(d *Document) { d.FileSharing.Paths = []string{`/Users`} }, `fileSharing.paths: "/Users" is not an absolute path`},
		{"windows two drives", windowsHost(), func(d *Document) { d.FileSharing.Paths = []string{`C:\Users`, `D:\src`} }, ""},
		{"windows unc share root", windowsHost(), func(d *Document) { d.FileSharing.Paths = []string{`\\server\share`} },
			`fileSharing.paths: "\\\\server\\share" is the whole disk; share the folders in it instead`},
		{"proxy mode", linuxHost(), func(d *Document) { d.Proxies.Mode = "auto" }, `proxies.mode: "auto" is not one of none, system, manual`},
		{"manual without proxy", linuxHost(), func(d *Document) { d.Proxies.Mode = ProxyManual }, "proxies.mode: manual needs proxies.http or proxies.https"},
		{"manual", linuxHost(), func(d *Document) { d.Proxies = Proxies{Mode: ProxyManual, HTTP: "http://p:3128", NoProxy: "localhost"} }, ""},
		{"proxy scheme", linuxHost(), func(d *Document) { d.Proxies.HTTPS = "ftp://p" }, `proxies.https: "ftp://p": the scheme must be http, https or socks5`},
		{"engine", linuxHost(), func(d *Document) { d.Engine = []byte(`{"mtu": 10, "bogus": 1}`) },
			"engine: the following directives don't match any configuration option: bogus"},
		{"engine value", linuxHost(), func(d *Document) { d.Engine = []byte(`{"mtu": 10}`) }, `engine.mtu: invalid value for "mtu": 10 is not between 68 and 65535`},
		{"several", linuxHost(), func(d *Document) { d.Resources.CPUs = 99; d.Proxies.Mode = "x" },
			"proxies.mode: \"x\" is not one of none, system, manual\nresources.cpus: 99 is more than the host's 8 CPUs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Defaults(tt.h)
			tt.change(d)
			err := Validate(d, tt.h)
			got := ""
			if err != nil {
				got = err.Error()
				var fe FieldErrors
				if !errors.As(err, &fe) {
					t.Errorf("%T is not FieldErrors", err)
				}
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestShareAddRemove(t *testing.T) {
	h := linuxHost()
	d := Defaults(h)
	if err := AddShare(d, h, "/srv"); err != nil {
		t.Fatal(err)
	}
	if err := AddShare(d, h, "/home/u/src"); err == nil || !strings.Contains(err.Error(), `"/home/u/src" is inside "/home/u"`) {
		t.Errorf("nested add: %v", err)
	}
	if err := AddShare(d, h, "/"); err == nil || !strings.Contains(err.Error(), "whole disk") {
		t.Errorf("root add: %v", err)
	}
	if err := RemoveShare(d, h, "/home/u/"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.FileSharing.Paths, []string{"/srv"}) {
		t.Errorf("paths %v", d.FileSharing.Paths)
	}
	if err := RemoveShare(d, h, "/x"); err == nil || err.Error() != `fileSharing.paths: "/x" is not shared` {
		t.Errorf("remove unknown: %v", err)
	}
}

func TestCheckChange(t *testing.T) {
	old := Defaults(linuxHost())
	grown := old.Clone()
	grown.Resources.DiskGiB = 128
	if err := CheckChange(old, grown, false); err != nil {
		t.Errorf("growing refused: %v", err)
	}
	shrunk := old.Clone()
	shrunk.Resources.DiskGiB = 32
	err := CheckChange(old, shrunk, false)
	if !errors.Is(err, ErrResetRequired) || !strings.HasPrefix(err.Error(), "resources.diskGiB: shrinking the disk from 64 to 32 GiB erases") {
		t.Errorf("shrinking: %v", err)
	}
	if err := CheckChange(old, shrunk, true); err != nil {
		t.Errorf("confirmed shrink refused: %v", err)
	}
}

func TestParse(t *testing.T) {
	defaults := Defaults(linuxHost())
	tests := []struct {
		name, in, want string
		check          func(*Document) bool
	}{
		{name: "partial", in: `{"version": 1, "resources": {"cpus": 4}}`, check: func(d *Document) bool {
			return d.Resources.CPUs == 4 && d.Resources.MemoryMiB == 2048 && reflect.DeepEqual(d.FileSharing.Paths, []string{"/home/u"})
		}},
		{name: "engine kept as written", in: `{"version": 1, "engine": {"default-shm-size": "64M", "debug": true}}`, check: func(d *Document) bool {
			return string(d.Engine) == `{"default-shm-size":"64M","debug":true}`
		}},
		{name: "paths replaced", in: `{"version": 1, "fileSharing": {"paths": ["/srv"]}}`, check: func(d *Document) bool {
			return reflect.DeepEqual(d.FileSharing.Paths, []string{"/srv"})
		}},
		{name: "unknown section", in: `{"version": 1, "gui": {}}`, want: "gui: unknown key"},
		{name: "unknown key", in: `{"version": 1, "resources": {"cpu": 4}}`, want: "resources.cpu: unknown key (known: cpus, memoryMiB, swapMiB, diskGiB, diskPath, vmSubnet)"},
		{name: "wrong type", in: `{"version": 1, "resources": {"cpus": "4"}}`, want: "resources.cpus: expected a number, got string"},
		{name: "section not object", in: `{"version": 1, "proxies": "none"}`, want: "proxies: expected an object, got a string"},
		{name: "engine bad", in: `{"version": 1, "engine": {"mtu": "x"}}`, want: `engine.mtu: invalid value for "mtu": expected an integer, got a string`},
		{name: "newer", in: `{"version": 9}`, want: "version: the document is version 9, newer than this Berth reads (1); update Berth"},
		{name: "bad version", in: `{"version": "1"}`, want: `version: expected a version number of 1 or more, got "1"`},
		{name: "syntax", in: "{\n\"version\": 1,\n}", want: "settings: line 3: invalid character '}' looking for beginning of object key string"},
		{name: "not object", in: `[]`, want: "settings: the document must be a JSON object, not array"},
		{name: "null", in: `null`, want: "settings: the document must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in), defaults)
			if tt.want != "" {
				if err == nil || err.Error() != tt.want {
					t.Fatalf("err %v\nwant %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(d) {
				t.Errorf("parsed %+v engine %s", d, d.Engine)
			}
		})
	}
}

func TestMigrateV0(t *testing.T) {
	defaults := Defaults(linuxHost())
	// What json.Marshal(desktop.Settings{...}) writes.
	v0doc := `{"CPUs":4,"MemoryMiB":4096,"DiskBytes":10737418241,"Shares":["/srv","/home/u"],"VMDir":"/opt/berth/vm"}`
	d, err := Parse([]byte(v0doc), defaults)
	if err != nil {
		t.Fatal(err)
	}
	want := defaults.Clone()
	want.Resources.CPUs, want.Resources.MemoryMiB, want.Resources.DiskGiB = 4, 4096, 11
	want.FileSharing.Paths = []string{"/srv", "/home/u"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("migrated\n%+v\nwant\n%+v", d, want)
	}
	d, err = Parse([]byte(`{"CPUs": 1}`), defaults)
	if err != nil || d.Resources.CPUs != 1 || d.Resources.DiskGiB != 64 || d.Version != Version {
		t.Errorf("partial v0: %+v %v", d, err)
	}
	if _, err := Parse([]byte(`{"cpus": 1, "Bogus": 2}`), defaults); err == nil || !strings.Contains(err.Error(), "not a version 0 document") {
		t.Errorf("unversioned garbage: %v", err)
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Path: filepath.Join(dir, "settings.json"), Host: linuxHost(), Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }}

	d, bad, err := s.Load()
	if err != nil || bad != nil || !reflect.DeepEqual(d, Defaults(s.Host)) {
		t.Fatalf("missing file: %+v %v %v", d, bad, err)
	}
	d.Resources.CPUs = 4
	if err := s.Save(d, false); err != nil {
		t.Fatal(err)
	}
	got, bad, err := s.Load()
	if err != nil || bad != nil || !reflect.DeepEqual(got, d) {
		t.Fatalf("reloaded %+v %v %v", got, bad, err)
	}
	if fi, err := os.Stat(s.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}

	// Refused documents leave the file as it was.
	before, _ := os.ReadFile(s.Path)
	d.Resources.CPUs = 64
	if err := s.Save(d, false); err == nil || !strings.Contains(err.Error(), "resources.cpus") {
		t.Errorf("saved an invalid document: %v", err)
	}
	d.Resources.CPUs = 4
	d.Resources.DiskGiB = 32
	if err := s.Save(d, false); !errors.Is(err, ErrResetRequired) {
		t.Errorf("shrank the disk unconfirmed: %v", err)
	}
	if after, _ := os.ReadFile(s.Path); string(after) != string(before) {
		t.Errorf("a refused save changed the file")
	}
	if err := s.Save(d, true); err != nil {
		t.Errorf("confirmed shrink: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	// A file that no longer parses is kept aside; the defaults are used.
	if err := os.WriteFile(s.Path, []byte(`{"version": 1, "resources": {"cpus": "many"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d, bad, err = s.Load()
	if err != nil || bad == nil || !reflect.DeepEqual(d, Defaults(s.Host)) {
		t.Fatalf("bad file: %+v %v %v", d, bad, err)
	}
	kept := s.Path + ".bad-20250102T030405Z"
	if bad.KeptAs != kept || !strings.Contains(bad.Error(), "resources.cpus: expected a number") {
		t.Errorf("bad file notice: %v", bad)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the bad file was not kept: %v", err)
	}
	if _, err := os.Stat(s.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the bad file is still in place: %v", err)
	}
}

func TestGetSet(t *testing.T) {
	h := linuxHost()
	d := Defaults(h)
	set := func(key, value string) *Document {
		t.Helper()
		n, err := Set(d, key, value)
		if err != nil {
			t.Fatalf("set %s %s: %v", key, value, err)
		}
		return n
	}
	if n := set("resources.cpus", "4"); n.Resources.CPUs != 4 || d.Resources.CPUs != 2 {
		t.Errorf("cpus %d (original %d)", n.Resources.CPUs, d.Resources.CPUs)
	}
	if n := set("resources.memoryMiB", "4096"); n.Resources.MemoryMiB != 4096 {
		t.Errorf("memory %d", n.Resources.MemoryMiB)
	}
	if n := set("fileSharing.paths", "/srv, /home/u"); !reflect.DeepEqual(n.FileSharing.Paths, []string{"/srv", "/home/u"}) {
		t.Errorf("paths %v", n.FileSharing.Paths)
	}
	if n := set("fileSharing.paths", `["/a,b"]`); !reflect.DeepEqual(n.FileSharing.Paths, []string{"/a,b"}) {
		t.Errorf("paths %v", n.FileSharing.Paths)
	}
	if n := set("proxies.mode", "manual"); n.Proxies.Mode != "manual" {
		t.Errorf("mode %q", n.Proxies.Mode)
	}
	if n := set("general.startAtLogin", "true"); !n.General.StartAtLogin {
		t.Errorf("start at login")
	}
	n := set("engine.insecure-registries", `["r:5000"]`)
	n, err := Set(n, "engine.mtu", "1400")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := n.EngineConfig(); err != nil || c.MTU != 1400 || len(c.InsecureRegistries) != 1 {
		t.Errorf("engine %s: %+v %v", n.Engine, c, err)
	}
	if v, err := Get(n, "engine.mtu"); err != nil || v.(interface{ String() string }).String() != "1400" {
		t.Errorf("get engine.mtu: %v %v", v, err)
	}
	if v, err := Get(d, "resources"); err != nil || v.(map[string]any)["cpus"].(interface{ String() string }).String() != "2" {
		t.Errorf("get resources: %v %v", v, err)
	}

	for _, tt := range []struct{ key, value, want string }{
		{"resources.cpus", "four", `resources.cpus: "four" is not a whole number`},
		{"resources.cpu", "4", "resources.cpu: unknown key (known in resources: cpus, memoryMiB, swapMiB, diskGiB, diskPath, vmSubnet)"},
		{"general.startAtLogin", "yes", `general.startAtLogin: "yes" is not true or false`},
		{"resources", "4", "resources: name a setting, such as resources.cpus (known in resources: cpus, memoryMiB, swapMiB, diskGiB, diskPath, vmSubnet)"},
		{"engine.bogus", "1", "engine.bogus: the following directives don't match any configuration option: bogus"},
		{"engine.mtu", "10", `engine.mtu: invalid value for "mtu": 10 is not between 68 and 65535`},
		{"nothing.here", "1", "nothing.here: unknown key (sections: engine, fileSharing, general, proxies, resources)"},
	} {
		if _, err := Set(d, tt.key, tt.value); err == nil || err.Error() != tt.want {
			t.Errorf("set %s %s: %v\nwant %s", tt.key, tt.value, err, tt.want)
		}
	}
	if _, err := Get(d, "engine.mtu"); err == nil || err.Error() != "engine.mtu: not set in daemon.json" {
		t.Errorf("get unset engine key: %v", err)
	}
}

func FuzzParseSettings(f *testing.F) {
	d := Defaults(linuxHost())
	seed, err := d.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"CPUs":4,"MemoryMiB":4096,"DiskBytes":1,"Shares":["/a"]}`))
	f.Add([]byte(`{"version": 1, "engine": {"mtu": 1400}, "proxies": {"mode": "manual", "http": "http://p"}}`))
	f.Add([]byte(`{"version": 2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data, d)
		if err != nil {
			return
		}
		if got.Version != Version {
			t.Fatalf("version %d accepted", got.Version)
		}
		out, err := got.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out, d)
		if err != nil {
			t.Fatalf("the written document is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normal(got), normal(again)) {
			t.Fatalf("round trip changed the document:\n%+v\n%+v", got, again)
		}
	})
}

// normal gives the forms Marshal writes for empty values.
func normal(d *Document) *Document {
	c := d.Clone()
	if c.FileSharing.Paths == nil {
		c.FileSharing.Paths = []string{}
	}
	if len(c.Engine) == 0 {
		c.Engine = []byte("{}")
	}
	return c
}
