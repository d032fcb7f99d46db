package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestDefaultSpec(t *testing.T) {
	s := DefaultSpec()
	m, err := capMask(s.Process.Capabilities.Bounding)
	if err != nil || m != 0xa80425fb {
		t.Fatalf("default capability mask = %#x, %v; want 0xa80425fb", m, err)
	}
	if len(s.Linux.Namespaces) != 6 || slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
		t.Fatalf("namespaces = %v", s.Linux.Namespaces)
	}
	if len(s.Linux.MaskedPaths) != 12 || len(s.Linux.ReadonlyPaths) != 5 || s.Linux.Seccomp == nil {
		t.Fatal("masked, read-only paths or seccomp missing")
	}
	// Specs must not share slices: the engine edits its copy.
	s.Linux.MaskedPaths[0] = "/changed"
	if DefaultSpec().Linux.MaskedPaths[0] == "/changed" {
		t.Fatal("DefaultSpec shares its masked paths")
	}
}

func TestTweakCapabilities(t *testing.T) {
	tests := []struct {
		name      string
		add, drop []string
		want      []string
		err       string
	}{
		{"none", nil, nil, DefaultCapabilities, ""},
		{"add lower no prefix", []string{"net_admin"}, nil, append([]string{"CAP_NET_ADMIN"}, DefaultCapabilities...), ""},
		{"drop prefixed mixed case", nil, []string{"Cap_Chown", "KILL"}, without(DefaultCapabilities, "CAP_CHOWN", "CAP_KILL"), ""},
		{"drop all add one", []string{"sys_admin"}, []string{"all"}, []string{"CAP_SYS_ADMIN"}, ""},
		{"add all", []string{"ALL"}, nil, AllCapabilities(), ""},
		{"add all drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, without(AllCapabilities(), "CAP_SYS_ADMIN"), ""},
		{"unknown", []string{"FLY"}, nil, nil, `unknown capability: "FLY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TweakCapabilities(DefaultCapabilities, tt.add, tt.drop)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, b := slices.Clone(got), slices.Clone(tt.want)
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func without(list []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return slices.Contains(drop, s) })
}

func TestApplyCapAddDropRebuildsSeccomp(t *testing.T) {
	s := DefaultSpec()
	if err := ApplyCapAddDrop(s, []string{"SYS_ADMIN"}, nil); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if slices.Contains(sc.Names, "mount") && sc.Action == specs.ActAllow {
			found = true
		}
	}
	if !found {
		t.Fatal("CAP_SYS_ADMIN did not allow mount in the profile")
	}
	SetPrivileged(s)
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || len(s.Process.Capabilities.Bounding) != len(capNames) {
		t.Fatal("privileged spec still confined")
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && slices.Contains(m.Options, "ro") {
			t.Fatal("/sys read-only when privileged")
		}
	}
}

func TestMountOptions(t *testing.T) {
	tests := []struct {
		opts  []string
		flags uintptr
		prop  uintptr
		data  string
		bind  bool
	}{
		{[]string{"nosuid", "noexec", "nodev", "ro"}, unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY, 0, "", false},
		{[]string{"rbind", "rprivate", "ro"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, unix.MS_PRIVATE | unix.MS_REC, "", true},
		{[]string{"nosuid", "mode=1777", "size=65536k"}, unix.MS_NOSUID, 0, "mode=1777,size=65536k", false},
		{[]string{"ro", "rw"}, 0, 0, "", false},
	}
	for _, tt := range tests {
		f, p, d, b := mountOptions(tt.opts)
		if f != tt.flags || p != tt.prop || d != tt.data || b != tt.bind {
			t.Errorf("mountOptions(%v) = %s %s %q %v", tt.opts, flagString(f), flagString(p), d, b)
		}
	}
}

func TestSecurePath(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "real/dir"), 0o755)
	os.Symlink("/real", filepath.Join(root, "abs"))
	os.Symlink("../../..", filepath.Join(root, "real/dir/up"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	tests := []struct{ in, want string }{
		{"/etc/hosts", "/etc/hosts"},
		{"/abs/dir", "/real/dir"},
		{"/real/dir/up/etc", "/etc"},
		{"../../../etc", "/etc"},
		{"/abs/../x", "/x"},
	}
	for _, tt := range tests {
		got, err := securePath(root, tt.in)
		if err != nil || got != root+tt.want {
			t.Errorf("securePath(%q) = %q, %v; want %q", tt.in, got, err, root+tt.want)
		}
	}
	if _, err := securePath(root, "/loop/x"); err == nil || !strings.Contains(err.Error(), "too many symlinks") {
		t.Errorf("symlink loop: %v", err)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	env := []string{"PATH=/nonexistent:" + dir}
	tests := []struct{ file, want, err string }{
		{"tool", filepath.Join(dir, "tool"), ""},
		{"data", "", `exec: "data": executable file not found in $PATH`},
		{filepath.Join(dir, "data"), "", `exec: "` + filepath.Join(dir, "data") + `": permission denied`},
		{dir, "", `exec: "` + dir + `": permission denied`},
		{"", "", `exec: "": executable file not found in $PATH`},
	}
	for _, tt := range tests {
		got, err := lookPath(tt.file, env)
		if (err == nil && tt.err != "") || (err != nil && err.Error() != tt.err) || got != tt.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q, %q", tt.file, got, err, tt.want, tt.err)
		}
	}
}

func TestFilterEncoding(t *testing.T) {
	r := &Runtime{}
	b, err := r.compileSeccomp(DefaultSpec().Linux.Seccomp)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := decodeFilter(b)
	if err != nil || len(prog) != len(b)/8 || len(prog) == 0 {
		t.Fatalf("decode: %d instructions, %v", len(prog), err)
	}
	if string(encodeFilter(prog)) != string(b) {
		t.Fatal("encoding does not round-trip")
	}
	if _, err := decodeFilter(b[:7]); err == nil {
		t.Fatal("a partial instruction decoded")
	}
	again, _ := r.compileSeccomp(DefaultSpec().Linux.Seccomp)
	if &again[0] != &b[0] {
		t.Fatal("the same profile was compiled twice")
	}
}

func FuzzSecurePath(f *testing.F) {
	root := f.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("/a", filepath.Join(root, "abs"))
	os.Symlink("../../../../..", filepath.Join(root, "a/b/up"))
	os.Symlink("b/../../..", filepath.Join(root, "a/rel"))
	os.Symlink("self", filepath.Join(root, "self"))
	for _, s := range []string{"/etc/passwd", "../..", "/abs/b/up/x", "a/rel/../../y", "/self/z", "//./a/../../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if strings.ContainsRune(p, 0) {
			return
		}
		got, err := securePath(root, p)
		if err != nil {
			return
		}
		if got != root && !strings.HasPrefix(got, root+"/") {
			t.Fatalf("securePath(%q) = %q escapes %q", p, got, root)
		}
	})
}

func FuzzMountOptions(f *testing.F) {
	f.Add("rbind,rprivate,ro,size=1k")
	f.Add("nosuid,,mode=0755")
	f.Fuzz(func(t *testing.T, s string) {
		flags, prop, data, bind := mountOptions(strings.Split(s, ","))
		if bind != (flags&unix.MS_BIND != 0) {
			t.Fatalf("bind %v but flags %s", bind, flagString(flags))
		}
		if prop&^(unix.MS_PRIVATE|unix.MS_SHARED|unix.MS_SLAVE|unix.MS_UNBINDABLE|unix.MS_REC) != 0 {
			t.Fatalf("propagation %s", flagString(prop))
		}
		for _, d := range strings.Split(data, ",") {
			if d == "ro" || d == "rbind" || d == "rprivate" {
				t.Fatalf("flag %q left in data %q", d, data)
			}
		}
	})
}

func TestNsFlags(t *testing.T) {
	tests := []struct {
		name string
		ns   []specs.LinuxNamespace
		want uintptr
		err  bool
	}{
		{"default", DefaultSpec().Linux.Namespaces, unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP, false},
		{"net by path", []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/run/netns/x"}}, unix.CLONE_NEWNS, false},
		{"no mount namespace", []specs.LinuxNamespace{{Type: specs.PIDNamespace}}, 0, true},
		{"user namespace", []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UserNamespace}}, 0, true},
		{"unknown", []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: "bogus"}}, 0, true},
	}
	for _, tt := range tests {
		got, err := nsFlags(&specs.Spec{Linux: &specs.Linux{Namespaces: tt.ns}})
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: nsFlags = %#x, %v", tt.name, got, err)
		}
	}
	if _, err := nsFlags(&specs.Spec{}); err == nil {
		t.Error("a spec without linux section passed")
	}
}
