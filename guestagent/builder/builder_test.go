//go:build linux

package builder

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func strp(s string) *string { return &s }

func TestExpandWord(t *testing.T) {
	env := &envList{kv: []string{"A=apple", "EMPTY=", "B=b c"}}
	for _, tt := range []struct{ in, want string }{
		{"$A", "apple"},
		{"${A}pie", "applepie"},
		{"${MISSING:-default}", "default"},
		{"${EMPTY:-default}", "default"},
		{"${A:+set}", "set"},
		{"${MISSING:+set}", ""},
		{`\$A`, "$A"},
		{"'$A'", "$A"},
		{`"$B"`, "b c"},
	} {
		got, err := expandWord('\\', tt.in, env)
		if err != nil || got != tt.want {
			t.Errorf("expand %q = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if got, err := expandWord('`', "`$A", env); err != nil || got != "$A" {
		t.Errorf("backtick escape: %q %v", got, err)
	}
}

func TestStepKey(t *testing.T) {
	base := stepKey("sha256:p", "RUN x", []string{"A=1"}, "h")
	for name, k := range map[string]string{
		"parent":      stepKey("sha256:q", "RUN x", []string{"A=1"}, "h"),
		"instruction": stepKey("sha256:p", "RUN y", []string{"A=1"}, "h"),
		"args":        stepKey("sha256:p", "RUN x", []string{"A=2"}, "h"),
		"content":     stepKey("sha256:p", "RUN x", []string{"A=1"}, "i"),
		"boundary":    stepKey("sha256:p", "RUN x", []string{"A=1h"}, ""),
	} {
		if k == base {
			t.Errorf("changing the %s keeps the key", name)
		}
	}
	if stepKey("sha256:p", "RUN x", []string{"A=1"}, "h") != base {
		t.Error("the key is not stable")
	}
}

func TestPlanStages(t *testing.T) {
	df := `ARG IMG=busybox
FROM $IMG AS base
RUN true
FROM base AS unused
RUN false
FROM busybox AS other
RUN echo other
FROM base
COPY --from=other /x /x
`
	p, err := parseDockerfile([]byte(df), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.needed, []int{0, 2, 3}) {
		t.Errorf("needed stages %v, want [0 2 3]", p.needed)
	}
	if p.steps != 6 {
		t.Errorf("steps %d, want 6", p.steps)
	}
	p, err = parseDockerfile([]byte(df), Options{Target: "UNUSED"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.needed, []int{0, 1}) || p.target != 1 {
		t.Errorf("--target unused: needed %v target %d", p.needed, p.target)
	}
	if _, err := parseDockerfile([]byte(df), Options{Target: "nosuch"}); err == nil {
		t.Error("a missing target is accepted")
	}
	if env := p.metaEnv(map[string]*string{"IMG": strp("alpine")}); env.kv[0] != "IMG=alpine" {
		t.Errorf("meta args with a build arg: %v", env.kv)
	}
	if _, err := parseDockerfile([]byte("RUN true\n"), Options{}); err == nil {
		t.Error("a Dockerfile without FROM is accepted")
	}
}

// memContext makes a memFS holding files (name -> content).
func memContext(t *testing.T, files map[string]string) *memFS {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		if strings.HasPrefix(files[name], "->") {
			_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: files[name][2:]})
			continue
		}
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name]))})
		_, _ = tw.Write([]byte(files[name]))
	}
	_ = tw.Close()
	m, err := readContext(t.TempDir(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestApplyIgnore(t *testing.T) {
	files := map[string]string{}
	for _, f := range []string{"Dockerfile", "keep.txt", "drop.log", "logs/a.log", "logs/important.log", "deep/x/y.tmp", "node_modules/m/index.js"} {
		files[f] = f
	}
	m := memContext(t, files)
	patterns := []string{"*.log", "logs/*.log", "!logs/important.log", "**/*.tmp", "node_modules", "Dockerfile"}
	if err := applyIgnore(m, patterns, "Dockerfile"); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{
		"Dockerfile": true, "keep.txt": true, "drop.log": false, "logs/a.log": false,
		"logs/important.log": true, "deep/x/y.tmp": false, "node_modules": false,
	} {
		_, err := fs.Stat(m, f)
		if (err == nil) != want {
			t.Errorf("%s present=%v, want %v", f, err == nil, want)
		}
	}
}

func TestMemFSSymlinksStayInside(t *testing.T) {
	m := memContext(t, map[string]string{
		"etc/passwd": "context's own\n",
		"out":        "->/etc",
		"up":         "->../../..",
		"loop":       "->loop",
		"dir/rel":    "->../etc/passwd",
	})
	for name, want := range map[string]string{"out/passwd": "context's own\n", "up/etc/passwd": "context's own\n", "dir/rel": "context's own\n"} {
		b, err := m.ReadFile(name)
		if err != nil || string(b) != want {
			t.Errorf("read %s = %q, %v", name, b, err)
		}
	}
	if _, err := m.Stat("loop"); err == nil {
		t.Error("a symlink loop resolves")
	}
	if target, err := m.ReadLink("out"); err != nil || target != "/etc" {
		t.Errorf("readlink out = %q, %v", target, err)
	}
	if sum, ok := m.sum("out/passwd"); !ok || sum == ([32]byte{}) {
		t.Error("no content hash through a symlink")
	}
}

func TestExposedPorts(t *testing.T) {
	got, err := exposedPorts("8000-8002/UDP")
	if err != nil || strings.Join(got, ",") != "8000/udp,8001/udp,8002/udp" {
		t.Errorf("range: %v %v", got, err)
	}
	for _, bad := range []string{"x", "9-1", "70000"} {
		if _, err := exposedPorts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseChown(t *testing.T) {
	files := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1001::/home/node:/bin/sh\n",
		"/etc/group":  "root:x:0:\nstaff:x:50:\n",
	}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
	for in, want := range map[string]ownerSpec{
		"":           {},
		"1000":       {true, 1000, 1000},
		"1000:50":    {true, 1000, 50},
		"root:root":  {true, 0, 0},
		"node":       {true, 1000, 1001},
		"node:staff": {true, 1000, 50},
		"7:staff":    {true, 7, 50},
	} {
		got, err := parseChown(in, read)
		if err != nil || got != want {
			t.Errorf("parseChown(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nobody", "node:nogroup"} {
		if _, err := parseChown(bad, read); err == nil {
			t.Errorf("parseChown(%q) accepted", bad)
		}
	}
}

func TestParseTrigger(t *testing.T) {
	cmd, err := parseTrigger("RUN echo hi")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cmd.(*instructions.RunCommand); !ok {
		t.Errorf("trigger parsed as %T", cmd)
	}
	if _, err := parseTrigger("ONBUILD RUN x"); err == nil {
		t.Error("ONBUILD ONBUILD accepted")
	}
}

func TestCacheSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := openCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.put("k", "sha256:1"); err != nil {
		t.Fatal(err)
	}
	c.close()
	c, err = openCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if v, ok := c.get("k"); !ok || v != "sha256:1" {
		t.Errorf("after reopen: %q %v", v, ok)
	}
	ids, err := c.prune()
	if err != nil || len(ids) != 1 {
		t.Errorf("prune: %v %v", ids, err)
	}
	if _, ok := c.get("k"); ok {
		t.Error("entry survives prune")
	}
}
