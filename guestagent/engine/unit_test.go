//go:build linux

package engine

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/image"
	"github.com/berthdesktop/berth/hostshare"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestStatusStrings(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		st     state
		state  container.ContainerState
		status string
	}{
		{"created", state{}, container.StateCreated, "Created"},
		{"running", state{Running: true, StartedAt: now.Add(-3 * time.Second)}, container.StateRunning, "Up 3 seconds"},
		{"running fresh", state{Running: true, StartedAt: now}, container.StateRunning, "Up Less than a second"},
		{"paused", state{Running: true, Paused: true, StartedAt: now.Add(-2 * time.Minute)}, container.StatePaused, "Up 2 minutes (Paused)"},
		{"restarting", state{Running: true, Restarting: true, ExitCode: 1, StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-2 * time.Second)}, container.StateRestarting, "Restarting (1) 2 seconds ago"},
		{"exited", state{StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-2 * time.Second), ExitCode: 0}, container.StateExited, "Exited (0) 2 seconds ago"},
		{"exited 137", state{StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour), ExitCode: 137}, container.StateExited, "Exited (137) About an hour ago"},
		{"removing", state{RemovalInProgress: true, StartedAt: now}, container.StateRemoving, "Removal In Progress"},
		{"dead", state{Dead: true, StartedAt: now}, container.StateDead, "Dead"},
	}
	for _, tt := range tests {
		if got := tt.st.stateString(); got != tt.state {
			t.Errorf("%s: state = %q, want %q", tt.name, got, tt.state)
		}
		if got := tt.st.statusString(now); got != tt.status {
			t.Errorf("%s: status = %q, want %q", tt.name, got, tt.status)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	always := container.RestartPolicy{Name: container.RestartPolicyAlways}
	onFailure2 := container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2}
	unless := container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	no := container.RestartPolicy{Name: container.RestartPolicyDisabled}
	type step struct {
		code      int
		manual    bool
		ran       time.Duration
		restart   bool
		wantDelay time.Duration
	}
	tests := []struct {
		name  string
		p     container.RestartPolicy
		steps []step
	}{
		{"no", no, []step{{code: 1, restart: false}}},
		{"always doubles", always, []step{
			{code: 0, restart: true, wantDelay: 100 * time.Millisecond},
			{code: 0, restart: true, wantDelay: 200 * time.Millisecond},
			{code: 1, restart: true, wantDelay: 400 * time.Millisecond},
			{code: 0, ran: 11 * time.Second, restart: true, wantDelay: 100 * time.Millisecond},
		}},
		{"always not after manual stop", always, []step{{code: 0, manual: true, restart: false}}},
		{"unless-stopped", unless, []step{{code: 3, restart: true, wantDelay: 100 * time.Millisecond}, {code: 0, manual: true}}},
		{"on-failure max 2", onFailure2, []step{
			{code: 0, restart: false},
			{code: 1, restart: true, wantDelay: 200 * time.Millisecond},
			{code: 1, restart: true, wantDelay: 400 * time.Millisecond},
			{code: 1, restart: false},
		}},
	}
	for _, tt := range tests {
		var r restartState
		for i, s := range tt.steps {
			got, d := r.shouldRestart(tt.p, s.code, s.manual, s.ran)
			if got != s.restart || (got && d != s.wantDelay) {
				t.Errorf("%s step %d: restart=%v delay=%v, want %v %v", tt.name, i, got, d, s.restart, s.wantDelay)
			}
		}
	}
	// The backoff caps at one minute.
	var r restartState
	var d time.Duration
	for range 20 {
		_, d = r.shouldRestart(always, 1, false, 0)
	}
	if d != time.Minute {
		t.Errorf("backoff after 20 restarts = %v, want 1m", d)
	}
}

func TestMergeImageConfig(t *testing.T) {
	img := func() *image.Image {
		i := &image.Image{}
		i.Config.Config.Entrypoint = []string{"/ep"}
		i.Config.Config.Cmd = []string{"a", "b"}
		i.Config.Config.Env = []string{"A=1", "B=2"}
		i.Config.Config.User = "daemon"
		i.Config.Config.WorkingDir = "/w"
		i.Config.Config.Labels = map[string]string{"l": "img", "m": "img"}
		i.Config.Config.StopSignal = "SIGQUIT"
		return i
	}
	tests := []struct {
		name      string
		in        container.Config
		wantPath  string
		wantArgs  []string
		wantEnv   []string
		wantUser  string
		wantLabel string
	}{
		{"image defaults", container.Config{}, "/ep", []string{"a", "b"}, []string{"A=1", "B=2"}, "daemon", "img"},
		{"cmd override", container.Config{Cmd: []string{"x"}}, "/ep", []string{"x"}, []string{"A=1", "B=2"}, "daemon", "img"},
		{"entrypoint override drops image cmd", container.Config{Entrypoint: []string{"/other"}}, "/other", []string{}, []string{"A=1", "B=2"}, "daemon", "img"},
		{"entrypoint cleared", container.Config{Entrypoint: []string{""}, Cmd: []string{"sh"}}, "sh", []string{}, []string{"A=1", "B=2"}, "daemon", "img"},
		{"env and user override", container.Config{Env: []string{"B=3", "C=4"}, User: "1000:1000", Labels: map[string]string{"l": "ctr"}}, "/ep", []string{"a", "b"}, []string{"A=1", "B=3", "C=4"}, "1000:1000", "ctr"},
	}
	for _, tt := range tests {
		cfg := tt.in
		mergeImageConfig(&cfg, img())
		path, args := entrypointAndArgs(cfg.Entrypoint, cfg.Cmd)
		if path != tt.wantPath || !slices.Equal(args, tt.wantArgs) {
			t.Errorf("%s: %q %q, want %q %q", tt.name, path, args, tt.wantPath, tt.wantArgs)
		}
		if !slices.Equal(cfg.Env, tt.wantEnv) || cfg.User != tt.wantUser || cfg.Labels["l"] != tt.wantLabel || cfg.Labels["m"] != "img" {
			t.Errorf("%s: env %q user %q labels %v", tt.name, cfg.Env, cfg.User, cfg.Labels)
		}
		if cfg.WorkingDir != "/w" || cfg.StopSignal != "SIGQUIT" {
			t.Errorf("%s: workdir %q stopsignal %q", tt.name, cfg.WorkingDir, cfg.StopSignal)
		}
	}
}

func TestTweakCaps(t *testing.T) {
	base := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}
	tests := []struct {
		add, drop []string
		want      []string
		wantErr   bool
	}{
		{nil, nil, base, false},
		{[]string{"NET_ADMIN"}, nil, []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_ADMIN"}, false},
		{nil, []string{"net_raw"}, []string{"CAP_CHOWN", "CAP_KILL"}, false},
		{[]string{"sys_admin"}, []string{"ALL"}, []string{"CAP_SYS_ADMIN"}, false},
		{[]string{"ALL"}, []string{"CHOWN"}, nil, false},
		{[]string{"BOGUS"}, nil, nil, true},
	}
	for _, tt := range tests {
		got, err := tweakCaps(base, tt.add, tt.drop)
		if tt.wantErr {
			if err == nil {
				t.Errorf("tweakCaps(%v, %v): no error", tt.add, tt.drop)
			}
			continue
		}
		if err != nil {
			t.Fatalf("tweakCaps(%v, %v): %v", tt.add, tt.drop, err)
		}
		if tt.want == nil {
			// ALL (what the engine has) minus CHOWN
			if len(got) != len(boundingCaps())-1 || slices.Contains(got, "CAP_CHOWN") {
				t.Errorf("ALL-CHOWN gave %d caps", len(got))
			}
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("tweakCaps(%v, %v) = %v, want %v", tt.add, tt.drop, got, tt.want)
		}
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in      string
		want    bind
		wantErr string
	}{
		{in: "/h:/c", want: bind{Source: "/h", Destination: "/c", RW: true}},
		{in: "/h/:/c:ro", want: bind{Source: "/h", Destination: "/c", RW: false, Mode: "ro"}},
		{in: "/h:/c:rw,rshared", want: bind{Source: "/h", Destination: "/c", RW: true, Mode: "rw,rshared", Propagation: "rshared"}},
		{in: "vol:/c", want: bind{Source: "vol", Destination: "/c", RW: true, Named: true}},
		{in: "v:/c", wantErr: "invalid characters"},
		{in: "vol:/c:rshared", wantErr: "invalid mode"},
		{in: "/h:rel", wantErr: "must be absolute"},
		{in: "/h:/", wantErr: "destination can't be '/'"},
		{in: "/h:/c:xx", wantErr: "invalid mode"},
		{in: "/h", wantErr: "invalid volume specification"},
	}
	for _, tt := range tests {
		got, err := parseBind(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseBind(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseBind(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want syscall.Signal
		err  bool
	}{
		{"KILL", syscall.SIGKILL, false},
		{"SIGTERM", syscall.SIGTERM, false},
		{"sigusr1", syscall.SIGUSR1, false},
		{"9", syscall.SIGKILL, false},
		{"RTMIN+1", syscall.Signal(35), false},
		{"0", 0, true},
		{"NOPE", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSignal(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSignal(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestDetachKeys(t *testing.T) {
	tests := []struct {
		keys    string
		want    []byte
		wantErr bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a,x", []byte{1, 'x'}, false},
		{"ctrl-@,ctrl-_", []byte{0, 31}, false},
		{"ctrl-1", nil, true},
		{"abc", nil, true},
	}
	for _, tt := range tests {
		got, err := parseDetachKeys(tt.keys)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v", tt.keys, got, err)
		}
	}
	scans := []struct {
		chunks []string
		out    string
		detach bool
	}{
		{[]string{"hello"}, "hello", false},
		{[]string{"ab\x10\x11cd"}, "ab", true},
		{[]string{"ab\x10", "\x11"}, "ab", true},
		{[]string{"a\x10b"}, "a\x10b", false},
		{[]string{"\x10\x10\x11"}, "\x10", true},
	}
	for _, tt := range scans {
		d := &detachScanner{keys: []byte{16, 17}}
		var out []byte
		var detached bool
		for _, c := range tt.chunks {
			o, det := d.scan([]byte(c))
			out = append(out, o...)
			if det {
				detached = true
				break
			}
		}
		if string(out) != tt.out || detached != tt.detach {
			t.Errorf("scan(%q) = %q %v, want %q %v", tt.chunks, out, detached, tt.out, tt.detach)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	ref := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"10m", ref.Add(-10 * time.Minute), false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.5", time.Unix(1700000000, 500000000), false},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), false},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTimestamp(tt.in, ref)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestCapsInMask(t *testing.T) {
	tests := []struct {
		mask uint64
		want []string
	}{
		{0, nil},
		{1, []string{"CAP_CHOWN"}},
		{0xa80425fb, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
			"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"}},
	}
	for _, tt := range tests {
		if got := capsInMask(tt.mask); !slices.Equal(got, tt.want) {
			t.Errorf("capsInMask(%#x) = %v, want %v", tt.mask, got, tt.want)
		}
	}
	if capBit("CAP_SYS_ADMIN") != 21 || capBit("CAP_CHECKPOINT_RESTORE") != 40 {
		t.Error("allCaps is not in capability-number order")
	}
}

func TestReplaceOrAppendEnv(t *testing.T) {
	got := replaceOrAppendEnv([]string{"A=1", "B=2", "C=3"}, []string{"B=x", "D=4", "C"})
	want := []string{"A=1", "B=x", "D=4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzParseDetachKeys(f *testing.F) {
	f.Add("ctrl-p,ctrl-q")
	f.Add("a,ctrl-@")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := parseDetachKeys(s)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatalf("no keys from %q", s)
		}
		d := &detachScanner{keys: keys}
		out, det := d.scan(keys)
		if !det || len(out) != 0 {
			t.Fatalf("typing the keys %q does not detach cleanly: %q %v", keys, out, det)
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	f.Add("10m")
	f.Add("1700000000.123")
	f.Add("2024-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseTimestamp(s, time.Now())
	})
}

func FuzzParseBind(f *testing.F) {
	f.Add("/a:/b:ro")
	f.Add("x:y:z:w")
	f.Add("vol:/data:nocopy")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseBind(s)
		if err != nil {
			return
		}
		// A source is a host path or, when not absolute, a volume's name.
		if b.Named != !strings.HasPrefix(b.Source, "/") || (b.Named && !validVolumeName(b.Source)) ||
			!strings.HasPrefix(b.Destination, "/") || b.Destination == "/" {
			t.Fatalf("accepted %q as %+v", s, b)
		}
	})
}

// TestTranslateSources: a Windows host's bind sources become VM paths;
// one outside the shares is refused naming the host path; VM paths and
// volumes are left as they are.
func TestTranslateSources(t *testing.T) {
	p, err := hostshare.ParseList("/run/host/c/Users")
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{cfg: Config{Shares: p.ForHost("windows")}}
	hc := &container.HostConfig{
		Binds:  []string{`C:\Users\me\src:/src:ro`, "/c/Users/me/x:/x", "vol:/v", "/run/host/c/Users/me/y:/y"},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: `C:/Users/me/m`, Target: "/m"}, {Type: mount.TypeVolume, Source: "v2", Target: "/v2"}},
	}
	orig := hc.Binds[0]
	binds := hc.Binds
	if err := e.translateSources(hc); err != nil {
		t.Fatal(err)
	}
	want := []string{"/run/host/c/Users/me/src:/src:ro", "/run/host/c/Users/me/x:/x", "vol:/v", "/run/host/c/Users/me/y:/y"}
	if !slices.Equal(hc.Binds, want) || hc.Mounts[0].Source != "/run/host/c/Users/me/m" || hc.Mounts[1].Source != "v2" {
		t.Fatalf("binds %q, mounts %+v", hc.Binds, hc.Mounts)
	}
	if binds[0] != orig {
		t.Error("the request's slice was changed")
	}
	hc = &container.HostConfig{Binds: []string{`D:\data:/d`}}
	err = e.translateSources(hc)
	if err == nil || !strings.Contains(err.Error(), `Mounts denied`) || !strings.Contains(err.Error(), `D:\data`) {
		t.Fatalf("source outside the shares: %v", err)
	}
	// A Linux or macOS host: nothing is translated.
	e.cfg.Shares = p
	hc = &container.HostConfig{Binds: []string{`C:\Users\me:/x`}}
	if err := e.translateSources(hc); err != nil || hc.Binds[0] != `C:\Users\me:/x` {
		t.Fatalf("linux host: %q %v", hc.Binds, err)
	}
}
