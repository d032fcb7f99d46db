package cgroups

import (
	"strings"
	"testing"
)

func TestFindMount(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"unified", "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", false},
		{"hybrid", "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified", false},
		{"escaped", `41 31 0:38 / /mnt/with\040space rw - cgroup2 none rw` + "\n", "/mnt/with space", false},
		{"v1 only", "31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "", true},
		{"garbage", "x y z\n- - -\n", "", true},
		{"empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindMount(strings.NewReader(tt.in))
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("FindMount = %q, %v; want %q, err %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func FuzzFindMount(f *testing.F) {
	f.Add("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n")
	f.Add(`1 2 3 / /a\134b\0 - cgroup2 x`)
	f.Fuzz(func(t *testing.T, s string) {
		mp, err := FindMount(strings.NewReader(s))
		if err == nil && mp == "" && !strings.Contains(s, " - cgroup2") {
			t.Fatalf("found an empty mount point in %q", s)
		}
	})
}
