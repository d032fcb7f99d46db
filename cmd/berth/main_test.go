package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
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
	}
	for _, c := range commands {
		if c.name == "version" {
			continue
		}
		tests = append(tests, struct {
			args       []string
			wantCode   int
			wantStdout string
			wantStderr string
		}{args: []string{c.name}, wantCode: 1, wantStderr: "berth " + c.name + ": not available yet"})
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
	want := []string{"start", "stop", "restart", "status", "logs", "shell", "settings", "reset", "purge", "uninstall", "version"}
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
