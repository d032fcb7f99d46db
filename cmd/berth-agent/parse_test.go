//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		key  string
		want string
		ok   bool
	}{
		{in: "Name:\tsh\nCapEff:\t00000000a80425fb\n", key: "CapEff", want: "00000000a80425fb", ok: true},
		{in: "Seccomp:\t2\nSeccomp_filters:\t1\n", key: "Seccomp", want: "2", ok: true},
		{in: "NoNewPrivs:\t1\nNoNewPrivs:\t0\n", key: "NoNewPrivs", want: "1", ok: true},
		{in: "garbage\n", key: "garbage", ok: false},
		{in: "", key: "CapEff", ok: false},
	}
	for _, tt := range tests {
		got, ok := parseStatus(tt.in)[tt.key]
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseStatus(%q)[%q] = %q, %v; want %q, %v", tt.in, tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add("Name:\tsh\nCapEff:\t00000000a80425fb\n")
	f.Add(":\n::\nx")
	f.Fuzz(func(t *testing.T, s string) {
		for k, v := range parseStatus(s) {
			if k == "" || strings.Contains(k, "\n") || strings.Contains(v, "\n") {
				t.Fatalf("bad entry %q=%q", k, v)
			}
		}
	})
}

func TestParseMountinfo(t *testing.T) {
	in := `74 72 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
52 73 0:42 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
90 72 0:50 / /with\040space rw shared:1 master:2 - ext4 /dev/sda1 rw
91 72 0:51 / /nosuper rw - overlay overlay
`
	got, err := parseMountinfo(in)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		i      int
		point  string
		fstype string
		source string
		ro     bool
		root   string
	}{
		{0, "/dev", "tmpfs", "tmpfs", false, "/"},
		{1, "/proc/sys", "proc", "proc", true, "/sys"},
		{2, "/with space", "ext4", "/dev/sda1", false, "/"},
		{3, "/nosuper", "overlay", "overlay", false, "/"},
	}
	if len(got) != len(tests) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(tests), got)
	}
	for _, tt := range tests {
		m := got[tt.i]
		if m.Point != tt.point || m.FSType != tt.fstype || m.Source != tt.source || m.has("ro") != tt.ro || m.Root != tt.root {
			t.Errorf("entry %d = %+v, want point %q type %q source %q ro %v root %q", tt.i, m, tt.point, tt.fstype, tt.source, tt.ro, tt.root)
		}
	}
	for _, bad := range []string{"1 2 3\n", "1 2 0:1 / /x rw shared:1\n", "1 2 0:1 / /x rw - tmpfs\n"} {
		if _, err := parseMountinfo(bad); err == nil {
			t.Errorf("parseMountinfo(%q): no error", bad)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/a\040b`, "/a b"},
		{`/a\011b\012`, "/a\tb\n"},
		{`/a\134b`, `/a\b`},
		{`/a\04`, `/a\04`},
		{`/a\999`, `/a\999`},
		{`\`, `\`},
	}
	for _, tt := range tests {
		if got := unescapeOctal(tt.in); got != tt.want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("74 72 0:43 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k\n")
	f.Add(`90 72 0:50 / /a\040b rw shared:1 - ext4 /dev/sda1 rw` + "\n")
	f.Add("1 2 3 4 5 6 - \n")
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseMountinfo(s)
		if err != nil {
			return
		}
		for _, m := range list {
			if m.FSType == "" || m.FSType == "-" && m.Source == "" {
				t.Fatalf("accepted entry without a filesystem type: %+v", m)
			}
		}
	})
}
