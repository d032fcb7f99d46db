package runtime

import (
	"slices"
	"strings"
	"testing"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken line
bad:x:notanumber:1::/:
42:x:4242:4242::/home/num:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:root,alice
alice:x:1000:
staff:x:50:alice, bob
42:x:4300:
junk
`

func TestResolveUser(t *testing.T) {
	pw, err := parsePasswd(strings.NewReader(testPasswd))
	if err != nil {
		t.Fatal(err)
	}
	gr, err := parseGroup(strings.NewReader(testGroup))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		spec     string
		uid, gid int
		extra    []int
		want     execUser
		err      string
	}{
		{"default root", "", 0, 0, nil, execUser{0, 0, []int{0, 10}, "/root"}, ""},
		{"name", "alice", 0, 0, nil, execUser{1000, 1000, []int{1000, 10, 50}, "/home/alice"}, ""},
		{"uid with entry", "1000", 1000, 0, nil, execUser{1000, 1000, []int{1000, 10, 50}, "/home/alice"}, ""},
		{"uid without entry", "5000", 5000, 0, nil, execUser{5000, 0, []int{0}, "/"}, ""},
		{"name:group", "alice:staff", 0, 0, nil, execUser{1000, 50, []int{50}, "/home/alice"}, ""},
		{"name:gid", "alice:77", 0, 0, nil, execUser{1000, 77, []int{77}, "/home/alice"}, ""},
		{"uid:gid", "7:8", 7, 8, []int{9}, execUser{7, 8, []int{8, 9}, "/"}, ""},
		{"numeric name wins", "42", 42, 0, nil, execUser{4242, 4242, []int{4242}, "/home/num"}, ""},
		{"numeric group name wins", "root:42", 0, 0, nil, execUser{0, 4300, []int{4300}, "/root"}, ""},
		{"only group", ":staff", 0, 0, nil, execUser{0, 50, []int{50}, "/root"}, ""},
		{"extra dedup", "", 1000, 1000, []int{50, 1000, 3}, execUser{1000, 1000, []int{1000, 10, 50, 3}, "/home/alice"}, ""},
		{"unknown user", "mallory", 0, 0, nil, execUser{}, "unable to find user mallory: no matching entries in passwd file"},
		{"unknown group", "alice:nogrp", 0, 0, nil, execUser{}, "unable to find group nogrp: no matching entries in group file"},
		{"uid too big", "4294967295", 0, 0, nil, execUser{}, "unable to find user 4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveUser(tt.spec, tt.uid, tt.gid, pw, gr, tt.extra)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID || got.Home != tt.want.Home || !slices.Equal(got.Sgids, tt.want.Sgids) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePasswdSkipsMalformed(t *testing.T) {
	pw, _ := parsePasswd(strings.NewReader(testPasswd))
	var names []string
	for _, e := range pw {
		names = append(names, e.Name)
	}
	if want := []string{"root", "daemon", "alice", "42"}; !slices.Equal(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	gr, _ := parseGroup(strings.NewReader(testGroup))
	if len(gr) != 5 || !slices.Equal(gr[3].Members, []string{"alice", "bob"}) {
		t.Fatalf("groups = %+v", gr)
	}
}

func FuzzParsePasswd(f *testing.F) {
	f.Add(testPasswd)
	f.Add("a:b:1:2\n::::\n")
	f.Fuzz(func(t *testing.T, s string) {
		pw, err := parsePasswd(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range pw {
			if e.Name == "" || e.UID < 0 || e.GID < 0 || strings.Contains(e.Name, ":") {
				t.Fatalf("bad entry %+v from %q", e, s)
			}
		}
	})
}

func FuzzParseGroup(f *testing.F) {
	f.Add(testGroup)
	f.Add("g:x:1:a,,b,\n")
	f.Fuzz(func(t *testing.T, s string) {
		gr, err := parseGroup(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range gr {
			if e.Name == "" || e.GID < 0 || slices.Contains(e.Members, "") {
				t.Fatalf("bad entry %+v from %q", e, s)
			}
		}
	})
}

func FuzzResolveUser(f *testing.F) {
	f.Add("alice:staff", testPasswd, testGroup)
	f.Add("1000", testPasswd, testGroup)
	f.Add(":", "", "")
	f.Fuzz(func(t *testing.T, spec, passwd, group string) {
		pw, _ := parsePasswd(strings.NewReader(passwd))
		gr, _ := parseGroup(strings.NewReader(group))
		u, err := resolveUser(spec, 0, 0, pw, gr, nil)
		if err != nil {
			return
		}
		if u.UID < 0 || u.UID > maxID || u.GID < 0 || u.GID > maxID || len(u.Sgids) == 0 || u.Sgids[0] != u.GID {
			t.Fatalf("resolveUser(%q) = %+v", spec, u)
		}
	})
}
