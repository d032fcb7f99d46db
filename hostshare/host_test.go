package hostshare

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"
)

func TestParseHostPath(t *testing.T) {
	tests := []struct {
		goos, in, want string // want "" is an error
	}{
		{"linux", "/home/me/src", "/home/me/src"},
		{"linux", "/home/me/../me/./src/", "/home/me/src"},
		{"linux", "/", "/"},
		{"linux", "relative", ""},
		{"linux", `C:\Users`, ""},
		{"linux", "", ""},
		{"linux", "/a\x00b", ""},
		{"darwin", "/Users/me", "/Users/me"},
		{"darwin", "/tmp//x", "/tmp/x"},
		{"darwin", "~/x", ""},
		{"windows", `C:\Users\me\x`, `C:\Users\me\x`},
		{"windows", `c:\Users\me\x`, `C:\Users\me\x`},
		{"windows", `C:/Users/me/x`, `C:\Users\me\x`},
		{"windows", `C:\Users\me\x\`, `C:\Users\me\x`},
		{"windows", `C:\Users\me\..\..\..\x`, `C:\x`},
		{"windows", `C:\`, `C:\`},
		{"windows", `/c/Users/me/x`, `C:\Users\me\x`},
		{"windows", `/c`, `C:\`},
		{"windows", `//c/Users/me/x`, `C:\Users\me\x`},
		{"windows", `//D/data`, `D:\data`},
		{"windows", `\\server\share\dir`, `\\server\share\dir`},
		{"windows", `//server/share`, `\\server\share`},
		{"windows", `\\server`, ""},
		{"windows", `\\server\..`, ""},
		{"windows", `C:`, ""},
		{"windows", `C:relative`, ""},
		{"windows", `Users\me`, ""},
		{"windows", `/home/me`, ""},
		{"windows", `/cd/x`, ""},
		{"windows", `1:\x`, ""},
		{"windows", `///c/x`, ""},
	}
	for _, tt := range tests {
		got, err := ParseHostPath(tt.goos, tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseHostPath(%s, %q) = %q, want an error", tt.goos, tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHostPath(%s, %q) = %q, %v; want %q", tt.goos, tt.in, got, err, tt.want)
		}
	}
}

func TestVMPath(t *testing.T) {
	for _, tt := range []struct{ goos, in, want string }{
		{"linux", "/home/me/x", "/home/me/x"},
		{"darwin", "/Users/me/x", "/Users/me/x"},
		{"windows", `C:\Users\me\x`, "/run/host/c/Users/me/x"},
		{"windows", `D:\`, "/run/host/d"},
		{"windows", `\\server\share\x`, "/run/host/unc/server/share/x"},
	} {
		if got := VMPath(tt.goos, tt.in); got != tt.want {
			t.Errorf("VMPath(%s, %q) = %q, want %q", tt.goos, tt.in, got, tt.want)
		}
	}
}

// fakeFS resolves links over a set of existing folders, as
// filepath.EvalSymlinks does on the OS it describes.
type fakeFS struct {
	sep   string
	links map[string]string // link -> absolute target
	dirs  map[string]bool
}

func (f fakeFS) resolve(p string) (string, error) {
	parts := strings.Split(p, f.sep)
	cur := parts[0]
	for _, part := range parts[1:] {
		if part == "" {
			continue
		}
		if strings.HasSuffix(cur, f.sep) {
			cur += part
		} else {
			cur += f.sep + part
		}
		if t, ok := f.links[cur]; ok {
			cur = t
		}
	}
	if cur == "" {
		cur = f.sep
	}
	if !f.dirs[cur] {
		return "", &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return cur, nil
}

// macOS: /tmp, /var and /etc are links into /private; the defaults share
// /Users, /Volumes, /private, /tmp and /var/folders.
var macFS = fakeFS{
	sep:   "/",
	links: map[string]string{"/tmp": "/private/tmp", "/var": "/private/var", "/etc": "/private/etc", "/Users/me/link": "/opt/elsewhere", "/Users/me/inside": "/Users/me/src"},
	dirs: map[string]bool{"/": true, "/private": true, "/private/tmp": true, "/private/var": true, "/private/var/folders": true, "/private/var/folders/xy": true,
		"/private/etc": true, "/Users": true, "/Users/me": true, "/Users/me/src": true, "/Volumes": true, "/opt": true, "/opt/elsewhere": true},
}

func TestHostPolicyMap(t *testing.T) {
	winFS := fakeFS{sep: `\`, links: map[string]string{`C:\Users\me\junction`: `D:\work`},
		dirs: map[string]bool{`C:\`: true, `C:\Users`: true, `C:\Users\me`: true, `C:\Users\me\x`: true, `D:\`: true, `D:\work`: true}}
	linuxFS := fakeFS{sep: "/", links: map[string]string{"/home/me/data": "/srv/data", "/home/me/proj": "/home/me/src"},
		dirs: map[string]bool{"/": true, "/home": true, "/home/me": true, "/home/me/src": true, "/srv": true, "/srv/data": true}}
	policies := map[string]HostPolicy{
		"darwin":  {OS: "darwin", Shares: []string{"/Users", "/Volumes", "/private", "/tmp", "/var/folders"}, Resolve: macFS.resolve},
		"linux":   {OS: "linux", Shares: []string{"/home/me"}, Resolve: linuxFS.resolve},
		"windows": {OS: "windows", Shares: []string{`C:\Users`}, Resolve: winFS.resolve},
		// Only /tmp shared: /tmp/x resolves to /private/tmp/x, which is
		// inside /tmp's own target, and the VM mounts /tmp at /tmp.
		"darwin-tmp-only": {OS: "darwin", Shares: []string{"/tmp"}, Resolve: macFS.resolve},
	}
	tests := []struct {
		policy, src, want string // want "" is "Mounts denied"
	}{
		{"darwin", "/Users/me/src", "/Users/me/src"},
		{"darwin", "/Users/me/new/dir", "/Users/me/new/dir"},
		{"darwin", "/users/me/src", "/Users/me/src"}, // case folded, as APFS does
		{"darwin", "/tmp/x", "/tmp/x"},
		{"darwin", "/tmp", "/tmp"},
		{"darwin", "/var/folders/xy/T", "/var/folders/xy/T"},
		{"darwin", "/private/var/folders/xy", "/private/var/folders/xy"},
		{"darwin", "/etc/hosts", "/private/etc/hosts"}, // /private is shared
		{"darwin", "/Users/me/inside/f", "/Users/me/src/f"},
		{"darwin", "/Users/me/link/f", ""}, // resolves to /opt
		{"darwin", "/opt/x", ""},
		{"darwin", "/Usersx", ""},
		{"darwin", "/", ""},
		{"darwin-tmp-only", "/tmp/x", "/tmp/x"},
		{"darwin-tmp-only", "/private/tmp/y", "/tmp/y"},
		{"darwin-tmp-only", "/private/var", ""},
		{"linux", "/home/me/src/x", "/home/me/src/x"},
		{"linux", "/home/me/proj/x", "/home/me/src/x"},
		{"linux", "/home/me/data", ""},
		{"linux", "/home/me/../other", ""},
		{"linux", "/home/Me/src", ""}, // Linux file systems keep case
		{"linux", "/etc", ""},
		{"windows", `C:\Users\me\x`, "/run/host/c/Users/me/x"},
		{"windows", `C:/Users/me/x`, "/run/host/c/Users/me/x"},
		{"windows", `/c/Users/me/x`, "/run/host/c/Users/me/x"},
		{"windows", `//c/Users/me/x`, "/run/host/c/Users/me/x"},
		{"windows", `c:\users\me\x`, "/run/host/c/Users/me/x"},
		{"windows", `C:\Users\me\missing\y`, "/run/host/c/Users/me/missing/y"},
		{"windows", `C:\Users`, "/run/host/c/Users"},
		{"windows", `C:\Users\me\junction`, ""}, // a junction to D:
		{"windows", `C:\Windows`, ""},
		{"windows", `D:\work`, ""},
		{"windows", `\\server\share`, ""},
	}
	for _, tt := range tests {
		h := policies[tt.policy]
		got, err := h.Map(tt.src)
		if tt.want == "" {
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Errorf("%s: Map(%q) = %q, %v; want Mounts denied", tt.policy, tt.src, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: Map(%q) = %q, %v; want %q", tt.policy, tt.src, got, err, tt.want)
		}
	}
	if _, err := policies["windows"].Map("relative"); err == nil || !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("a relative source: %v", err)
	}
}

func TestHostPolicyDeniedMessage(t *testing.T) {
	h := HostPolicy{OS: "windows", Shares: []string{`C:\Users`}}
	_, err := h.Map(`//c/Windows/x`)
	want := "Mounts denied: \nThe path C:\\Windows\\x is not shared from the host and is not known to Berth.\n" +
		"You can configure shared paths from Settings > Resources > File sharing."
	if err == nil || err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestHostPolicyMounts(t *testing.T) {
	h := HostPolicy{OS: "windows", Shares: []string{`C:\Users`, `d:/src`, `\\nas\team`}}
	ms, err := h.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{{`C:\Users`, "/run/host/c/Users"}, {`D:\src`, "/run/host/d/src"}, {`\\nas\team`, "/run/host/unc/nas/team"}}
	for i := range want {
		if i >= len(ms) || ms[i] != want[i] {
			t.Fatalf("Mounts = %v, want %v", ms, want)
		}
	}
	vps, _ := HostPolicy{OS: "darwin", Shares: []string{"/Users", "/tmp/"}}.VMPaths()
	if strings.Join(vps, ",") != "/Users,/tmp" {
		t.Errorf("VMPaths = %v", vps)
	}
	if _, err := (HostPolicy{OS: "linux", Shares: []string{"rel"}}).Mounts(); err == nil {
		t.Error("a relative share must be refused")
	}
}

func TestSplitBind(t *testing.T) {
	for _, tt := range []struct {
		in, src, rest string
		ok            bool
	}{
		{`C:\Users\me\x:/in:ro`, `C:\Users\me\x`, "/in:ro", true},
		{`c:/x:/in`, `c:/x`, "/in", true},
		{`C:\x`, `C:\x`, "", true},
		{`/c/x:/in`, "", "", false},
		{`name:/in`, "", "", false},
		{`C:x:/in`, "", "", false},
	} {
		src, rest, ok := SplitBind(tt.in)
		if src != tt.src || rest != tt.rest || ok != tt.ok {
			t.Errorf("SplitBind(%q) = %q, %q, %v", tt.in, src, rest, ok)
		}
	}
}

// The engine in the VM of a Windows host: its shared folders are VM
// paths, and the docker CLI's Windows sources map onto them.
func TestPolicyTranslateWindowsHost(t *testing.T) {
	vps, err := HostPolicy{OS: "windows", Shares: []string{`C:\Users`}}.VMPaths()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(vps)
	if err != nil {
		t.Fatal(err)
	}
	p = p.ForHost("windows").WithInternal("/var/run/docker.sock")
	for src, want := range map[string]string{
		`C:\Users\me\x`:          "/run/host/c/Users/me/x",
		`C:/Users/me/x`:          "/run/host/c/Users/me/x",
		`/c/Users/me/x`:          "/run/host/c/Users/me/x",
		`//c/Users/me/x`:         "/run/host/c/Users/me/x",
		"/run/host/c/Users/me/x": "/run/host/c/Users/me/x",
		"/var/run/docker.sock":   "/var/run/docker.sock",
		`C:\Windows`:             "",
		"/etc":                   "",
		"/d/data":                "",
	} {
		got, err := p.Translate(src)
		if want == "" {
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Errorf("Translate(%q) = %q, %v; want Mounts denied", src, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("Translate(%q) = %q, %v; want %q", src, got, err, want)
		}
	}
	_, err = p.Translate(`C:/Windows`)
	var de *DeniedError
	if !errors.As(err, &de) || de.Path != `C:\Windows` {
		t.Errorf("the denied path is named in the host's form: %v", err)
	}
	// A Linux or macOS host's engine takes every source as a VM path.
	lp, _ := NewPolicy([]string{"/Users"})
	if got, err := lp.Translate("/Users/me/../me/x"); err != nil || got != "/Users/me/x" {
		t.Errorf("Translate on a unix host = %q, %v", got, err)
	}
	if _, err := lp.Translate(`C:\Users`); err == nil {
		t.Error("a Windows source on a unix host's engine must be refused")
	}
}

func FuzzParseHostPath(f *testing.F) {
	for _, s := range []string{`C:\Users\me`, `c:/x/../..`, `/c/x`, `//c/x`, `\\srv\share\x`, "/Users/me", "/tmp/../..", "rel", `\\`, `//`, "//./A/0", `\\?\C:\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, goos := range []string{"linux", "darwin", "windows"} {
			p, err := ParseHostPath(goos, s)
			if err != nil {
				continue
			}
			again, err := ParseHostPath(goos, p)
			if err != nil || again != p {
				t.Fatalf("%s: %q parses to %q, which parses to %q, %v", goos, s, p, again, err)
			}
			vm := VMPath(goos, p)
			if !strings.HasPrefix(vm, "/") || path.Clean(vm) != vm {
				t.Fatalf("%s: VMPath(%q) = %q is not a clean absolute path", goos, p, vm)
			}
			if goos == "windows" && !strings.HasPrefix(vm+"/", WindowsRoot+"/") {
				t.Fatalf("VMPath(%q) = %q is outside %s", p, vm, WindowsRoot)
			}
			if goos == "windows" && !IsWindowsSource(s) && !strings.HasPrefix(s, WindowsRoot+"/") {
				t.Fatalf("%q parses as Windows but is not a Windows source", s)
			}
			// A path maps into the share that is itself, at its VM path,
			// and the engine's policy over the VM paths lets that through.
			h := HostPolicy{OS: goos, Shares: []string{p}}
			got, err := h.Map(s)
			if err != nil || got != vm {
				t.Fatalf("%s: Map(%q) with itself shared = %q, %v; want %q", goos, s, got, err, vm)
			}
			vps, _ := h.VMPaths()
			pol, err := NewPolicy(vps)
			if err != nil {
				t.Fatalf("%s: NewPolicy(%q): %v", goos, vps, err)
			}
			if !pol.Allowed(got) {
				t.Fatalf("%s: the engine refuses %q under %q", goos, got, vps)
			}
		}
	})
}
