package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/settings"
)

// runIn runs one command line with stdin and returns its status and output.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var code int
	switch args[0] {
	case "settings":
		code = cmdSettings(args[1:], strings.NewReader(stdin), &stdout, &stderr)
	default:
		code = run(args, &stdout, &stderr)
	}
	return code, stdout.String(), stderr.String()
}

func stored(t *testing.T) *settings.Document {
	t.Helper()
	st, err := settings.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	d, bad, err := st.Load()
	if err != nil || bad != nil {
		t.Fatalf("load: %v %v", bad, err)
	}
	return d
}

func TestSettingsCommands(t *testing.T) {
	home := t.TempDir()
	t.Setenv("BERTH_HOME", home)
	share := t.TempDir()

	if code, out, _ := runIn(t, "", "settings", "get", "resources.cpus"); code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("get cpus: %d %q", code, out)
	}
	if code, out, _ := runIn(t, "", "settings", "get", "--json"); code != 0 || !strings.Contains(out, `"version": 1`) {
		t.Errorf("get --json: %d %q", code, out)
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "resources.cpus", "1"); code != 0 {
		t.Fatalf("set cpus: %d %s", code, stderr)
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "fileSharing.paths", share); code != 0 {
		t.Fatalf("set paths: %d %s", code, stderr)
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "engine.insecure-registries", `["r:5000"]`); code != 0 {
		t.Fatalf("set engine key: %d %s", code, stderr)
	}
	d := stored(t)
	if d.Resources.CPUs != 1 || len(d.FileSharing.Paths) != 1 || d.FileSharing.Paths[0] != share {
		t.Errorf("stored %+v", d)
	}
	if code, out, _ := runIn(t, "", "engine", "config", "show"); code != 0 || !strings.Contains(out, `"r:5000"`) {
		t.Errorf("engine config show: %d %q", code, out)
	}

	// Refusals exit 1 and name the key.
	for _, tt := range []struct {
		args []string
		key  string
	}{
		{[]string{"settings", "set", "resources.cpus", "100000"}, "resources.cpus"},
		{[]string{"settings", "set", "resources.memoryMiB", "lots"}, "resources.memoryMiB"},
		{[]string{"settings", "set", "resources.diskGiB", "8"}, "resources.diskGiB"},
		{[]string{"settings", "set", "fileSharing.paths", "/"}, "fileSharing.paths"},
		{[]string{"settings", "set", "fileSharing.paths", filepath.Join(share, "missing")}, "fileSharing.paths"},
		{[]string{"settings", "set", "proxies.mode", "sometimes"}, "proxies.mode"},
		{[]string{"settings", "set", "engine.mtu", "1"}, "engine.mtu"},
		{[]string{"settings", "set", "resources.nope", "1"}, "resources.nope"},
		{[]string{"settings", "get", "resources.nope"}, "resources.nope"},
	} {
		code, _, stderr := runIn(t, "", tt.args...)
		if code != 1 || !strings.Contains(stderr, tt.key+":") {
			t.Errorf("%v: %d %q, want 1 and the key %s", tt.args, code, stderr, tt.key)
		}
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "resources.diskGiB", "8"); code != 1 || !strings.Contains(stderr, "--confirm-reset") {
		t.Errorf("shrink: %d %q", code, stderr)
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "resources.diskGiB", "8", "--confirm-reset"); code != 0 {
		t.Errorf("confirmed shrink: %d %q", code, stderr)
	}
	if d := stored(t); d.Resources.CPUs != 1 || d.Resources.DiskGiB != 8 {
		t.Errorf("refusals changed the document: %+v", d)
	}

	// validate FILE.
	good := filepath.Join(t.TempDir(), "good.json")
	os.WriteFile(good, []byte(`{"version": 1, "resources": {"cpus": 1}}`), 0o600)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version": 1, "resources": {"cpus": 0}, "proxies": {"mode": "x"}}`), 0o600)
	if code, _, stderr := runIn(t, "", "settings", "validate", good); code != 0 {
		t.Errorf("validate good: %d %s", code, stderr)
	}
	if code, _, stderr := runIn(t, "", "settings", "validate", bad); code != 1 || !strings.Contains(stderr, "resources.cpus:") || !strings.Contains(stderr, "proxies.mode:") {
		t.Errorf("validate bad: %d %q", code, stderr)
	}

	// engine config validate FILE names the line and the key.
	dj := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(dj, []byte("{\n  \"debug\": true,\n  \"mtu\": 1\n}\n"), 0o600)
	if code, _, stderr := runIn(t, "", "engine", "config", "validate", dj); code != 1 || !strings.Contains(stderr, `line 3: invalid value for "mtu"`) {
		t.Errorf("engine config validate: %d %q", code, stderr)
	}
	os.WriteFile(dj, []byte(`{"debug": true}`), 0o600)
	if code, _, stderr := runIn(t, "", "engine", "config", "validate", dj); code != 0 {
		t.Errorf("engine config validate good: %d %q", code, stderr)
	}
	// engine config apply FILE, Berth stopped: saved for the next start;
	// a bad document changes nothing.
	os.WriteFile(dj, []byte(`{"insecure-registries": ["127.0.0.1:5000"]}`), 0o600)
	if code, out, stderr := runIn(t, "", "engine", "config", "apply", dj); code != 0 || !strings.Contains(out, "next start") {
		t.Errorf("engine config apply: %d %q %q", code, out, stderr)
	}
	os.WriteFile(dj, []byte("{\n  \"mtu\": 1\n}"), 0o600)
	if code, _, stderr := runIn(t, "", "engine", "config", "apply", dj); code != 1 || !strings.Contains(stderr, `line 2: invalid value for "mtu"`) || !strings.Contains(stderr, "Nothing was applied") {
		t.Errorf("engine config apply bad: %d %q", code, stderr)
	}
	if code, out, _ := runIn(t, "", "engine", "config", "show"); code != 0 || !strings.Contains(out, "127.0.0.1:5000") {
		t.Errorf("engine config show after a refused apply: %d %q", code, out)
	}

	// edit: a valid edit is saved; an invalid one is not, and the user is
	// asked whether to edit again.
	t.Setenv("VISUAL", "")
	t.Setenv("EDITOR", "cp "+good)
	if code, _, stderr := runIn(t, "", "settings", "edit"); code != 0 {
		t.Errorf("edit: %d %q", code, stderr)
	}
	t.Setenv("EDITOR", "cp "+bad)
	before, _ := os.ReadFile(filepath.Join(home, settings.FileName))
	if code, out, stderr := runIn(t, "n\n", "settings", "edit"); code != 1 || !strings.Contains(stderr, "resources.cpus:") || !strings.Contains(out, "Edit again?") {
		t.Errorf("bad edit: %d %q %q", code, out, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(home, settings.FileName)); !bytes.Equal(before, after) {
		t.Errorf("a refused edit changed settings.json")
	}

	// A settings file that no longer parses is kept aside and the user told.
	os.WriteFile(filepath.Join(home, settings.FileName), []byte("{not json"), 0o600)
	if code, _, stderr := runIn(t, "", "settings", "get", "resources.cpus"); code != 0 || !strings.Contains(stderr, "settings.json.bad-") {
		t.Errorf("bad file: %d %q", code, stderr)
	}
}

func TestSettingsShare(t *testing.T) {
	t.Setenv("BERTH_HOME", t.TempDir())
	a, b := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(a, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runIn(t, "", "settings", "set", "fileSharing.paths", a); code != 0 {
		t.Fatalf("set paths: %d %s", code, stderr)
	}
	if code, out, stderr := runIn(t, "", "settings", "share", "add", b); code != 0 || !strings.Contains(out, "shared folder "+b+" saved") {
		t.Fatalf("share add: %d %q %s", code, out, stderr)
	}
	if code, out, _ := runIn(t, "", "settings", "share", "list"); code != 0 || out != a+"\n"+b+"\n" {
		t.Errorf("share list: %d %q", code, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"add", filepath.Join(a, "sub")}, "already shared"},
		{[]string{"add", filepath.Join(filepath.Dir(a), "missing")}, "does not exist"},
		{[]string{"add", b}, "listed twice"},
		{[]string{"add", "/"}, "whole disk"},
		{[]string{"remove", filepath.Join(a, "sub")}, "is not shared"},
	} {
		code, _, stderr := runIn(t, "", append([]string{"settings", "share"}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, "fileSharing.paths") || !strings.Contains(stderr, tt.want) {
			t.Errorf("share %q: %d %q, want the key and %q", tt.args, code, stderr, tt.want)
		}
	}
	if code, _, stderr := runIn(t, "", "settings", "share", "remove", a); code != 0 {
		t.Fatalf("share remove: %d %s", code, stderr)
	}
	if d := stored(t); len(d.FileSharing.Paths) != 1 || d.FileSharing.Paths[0] != b {
		t.Errorf("stored shares %q", d.FileSharing.Paths)
	}
	if code, _, _ := runIn(t, "", "settings", "share", "move", a); code != 2 {
		t.Errorf("an unknown share verb: %d", code)
	}
}
