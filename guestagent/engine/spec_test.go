//go:build linux

package engine

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func TestBuildSpec(t *testing.T) {
	e, _, _ := newTestEngine(t, "")
	e.cfg.DefaultUlimits = []*container.Ulimit{{Name: "nproc", Soft: 10, Hard: 20}}
	pids := int64(50)
	tests := []struct {
		name    string
		cfg     container.Config
		hc      container.HostConfig
		check   func(t *testing.T, s *specs.Spec)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, s *specs.Spec) {
			if s.Process.Cwd != "/" || s.Linux.Seccomp == nil || s.Root.Readonly || !hasNS(s, specs.NetworkNamespace) {
				t.Errorf("defaults changed: cwd %q seccomp %v", s.Process.Cwd, s.Linux.Seccomp)
			}
			if m := mountAt(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=67108864") {
				t.Errorf("shm mount %+v", m)
			}
			if !slices.Contains(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Soft: 10, Hard: 20}) {
				t.Errorf("daemon default ulimit missing: %+v", s.Process.Rlimits)
			}
		}},
		{name: "tty env and user", cfg: container.Config{Tty: true, User: "1000:50", Env: []string{"PATH=/x"}}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Process.Terminal || !slices.Contains(s.Process.Env, "TERM=xterm") || !slices.Contains(s.Process.Env, "PATH=/x") {
				t.Errorf("env %q", s.Process.Env)
			}
			if s.Process.User.UID != 1000 || s.Process.User.GID != 50 || s.Process.User.Username != "1000:50" {
				t.Errorf("user %+v", s.Process.User)
			}
		}},
		{name: "privileged", hc: container.HostConfig{Privileged: true}, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Process.Capabilities.Effective) != len(boundingCaps()) {
				t.Errorf("privileged: seccomp %v masked %v caps %d", s.Linux.Seccomp, s.Linux.MaskedPaths, len(s.Process.Capabilities.Effective))
			}
			if m := mountAt(s, "/sys"); slices.Contains(m.Options, "ro") {
				t.Errorf("privileged /sys still ro")
			}
			if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Type != "" || d[0].Access != "rwm" {
				t.Errorf("privileged device rules %+v, want allow-all", d)
			}
			if len(s.Linux.Devices) == 0 {
				t.Errorf("privileged: no host devices in the spec")
			}
		}},
		{name: "read-only tmpfs shm", hc: container.HostConfig{ReadonlyRootfs: true, ShmSize: 1 << 20, Tmpfs: map[string]string{"/run": "size=1m,exec"}}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
			m := mountAt(s, "/run")
			if m == nil || m.Type != "tmpfs" || slices.Contains(m.Options, "noexec") || !slices.Contains(m.Options, "size=1m") || !slices.Contains(m.Options, "nosuid") {
				t.Errorf("tmpfs %+v", m)
			}
			if m := mountAt(s, "/dev/shm"); !slices.Contains(m.Options, "size=1048576") {
				t.Errorf("shm %+v", m.Options)
			}
			if m := mountAt(s, "/etc/hosts"); m == nil || !slices.Contains(m.Options, "ro") {
				t.Errorf("hosts file in read-only container: %+v", m)
			}
		}},
		{name: "bind", hc: container.HostConfig{Binds: []string{t.TempDir() + ":/data:ro"}}, check: func(t *testing.T, s *specs.Spec) {
			m := mountAt(s, "/data")
			if m == nil || m.Type != "bind" || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rbind") {
				t.Errorf("bind %+v", m)
			}
		}},
		{name: "security opts", hc: container.HostConfig{SecurityOpt: []string{"no-new-privileges:true", "seccomp=unconfined"}}, check: func(t *testing.T, s *specs.Spec) {
			if !s.Process.NoNewPrivileges || s.Linux.Seccomp != nil {
				t.Errorf("nnp %v seccomp %v", s.Process.NoNewPrivileges, s.Linux.Seccomp)
			}
		}},
		{name: "bad security opt", hc: container.HostConfig{SecurityOpt: []string{"bogus"}}, wantErr: "invalid --security-opt"},
		{name: "ulimit overrides default", hc: container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 5, Hard: 6}}}}, check: func(t *testing.T, s *specs.Spec) {
			var n int
			for _, r := range s.Process.Rlimits {
				if r.Type == "RLIMIT_NOFILE" {
					n++
					if r.Soft != 5 || r.Hard != 6 {
						t.Errorf("nofile %+v", r)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d nofile rlimits", n)
			}
		}},
		{name: "host network and pid", hc: container.HostConfig{NetworkMode: "host", PidMode: "host"}, check: func(t *testing.T, s *specs.Spec) {
			if hasNS(s, specs.NetworkNamespace) || hasNS(s, specs.PIDNamespace) || !hasNS(s, specs.MountNamespace) {
				t.Errorf("namespaces %+v", s.Linux.Namespaces)
			}
		}},
		{name: "resources", hc: container.HostConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 1.5e9, CPUShares: 512, PidsLimit: &pids}}, check: func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if r.Memory == nil || *r.Memory.Limit != 64<<20 || r.CPU == nil || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 || *r.Pids.Limit != 50 {
				t.Errorf("resources %+v", r)
			}
			if !reflect.DeepEqual(r.Devices, testDeviceRules()) {
				t.Errorf("device rules %+v, want the default spec's", r.Devices)
			}
		}},
		{name: "default device rules", check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Resources == nil || !reflect.DeepEqual(s.Linux.Resources.Devices, testDeviceRules()) {
				t.Errorf("resources %+v, want the default spec's device rules", s.Linux.Resources)
			}
		}},
		{name: "cap add drop", hc: container.HostConfig{CapAdd: []string{"SYS_ADMIN"}, CapDrop: []string{"CAP_KILL"}}, check: func(t *testing.T, s *specs.Spec) {
			c := s.Process.Capabilities
			if !slices.Contains(c.Effective, "CAP_SYS_ADMIN") || slices.Contains(c.Bounding, "CAP_KILL") {
				t.Errorf("caps %v", c.Effective)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			hc := tt.hc
			cfg.Hostname = "h"
			mps, err := mountPoints(&hc)
			if err != nil {
				t.Fatal(err)
			}
			m := &meta{ID: strings.Repeat("a", 64), Path: "sh", Config: &cfg, HostConfig: &hc, Mounts: mps,
				HostsPath: "/x/hosts", HostnamePath: "/x/hostname", ResolvConfPath: "/x/resolv.conf"}
			s, _, err := e.buildSpec(m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
	// Limits the host cannot enforce are left out of the spec.
	e.cfg.Limits = Limits{}
	if r := e.resources(&container.Resources{Memory: 64 << 20, NanoCPUs: 1e9, PidsLimit: &pids}); r.Memory != nil || r.CPU != nil || r.Pids != nil {
		t.Errorf("unsupported limits kept: %+v", r)
	}
}

func FuzzParseSignal(f *testing.F) {
	f.Add("SIGKILL")
	f.Add("RTMIN+3")
	f.Add("15")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseSignal(s)
		if err == nil && (sig <= 0 || sig > 64) {
			t.Fatalf("parseSignal(%q) = %d", s, sig)
		}
	})
}
