package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Setenv("BERTH_HOME", t.TempDir())
	tests := []struct {
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{args: nil, wantCode: 2, wantStderr: "usage:"},
		{args: []string{"version"}, wantCode: 0, wantStdout: "berth "},
		{args: []string{"help"}, wantCode: 0, wantStdout: "uninstall"},
		{args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{args: []string{"status", "--bogus"}, wantCode: 2},
		{args: []string{"stop", "extra"}, wantCode: 2, wantStderr: "usage: berth stop"},
		{args: []string{"shell"}, wantCode: 1, wantStderr: "berth is not running"},
		{args: []string{"settings"}, wantCode: 2, wantStderr: "usage: berth settings"},
		{args: []string{"engine"}, wantCode: 2, wantStderr: "usage: berth engine config"},
		{args: []string{"reset", "extra"}, wantCode: 2, wantStderr: "usage: berth reset"},
		{args: []string{"purge", "--bogus"}, wantCode: 2, wantStderr: "usage: berth purge"},
		{args: []string{"uninstall", "--help"}, wantCode: 2, wantStderr: "usage: berth uninstall"},
		{args: []string{"diagnose", "-x"}, wantCode: 2, wantStderr: "usage: berth diagnose"},
		{args: []string{"logs"}, wantCode: 1, wantStderr: "no logs"},
		{args: []string{"stop"}, wantCode: 0, wantStdout: "not running"},
		{args: []string{"status", "--json"}, wantCode: 0, wantStdout: `"state": "stopped"`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.wantCode {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr.String())
		}
		if !strings.Contains(stdout.String(), tt.wantStdout) {
			t.Errorf("run(%q) stdout %q, want it to contain %q", tt.args, stdout.String(), tt.wantStdout)
		}
		if !strings.Contains(stderr.String(), tt.wantStderr) {
			t.Errorf("run(%q) stderr %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
		}
	}
}

func TestEveryDesignedCommandExists(t *testing.T) {
	want := []string{"start", "stop", "restart", "status", "logs", "shell", "settings", "engine", "reset", "purge", "uninstall", "diagnose", "version"}
	have := map[string]bool{}
	for _, c := range commands {
		have[c.name] = true
	}
	for _, name := range want {
		if !have[name] {
			t.Errorf("command %q is missing", name)
		}
	}
}
