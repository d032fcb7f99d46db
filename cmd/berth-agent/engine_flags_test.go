//go:build linux

package main

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestParseEngineFlags(t *testing.T) {
	tests := []struct {
		args    []string
		check   func(*engineFlags) bool
		wantErr string
	}{
		{args: nil, check: func(f *engineFlags) bool {
			return f.dataRoot == defaultDataRoot && len(f.hosts) == 0 && len(f.set) == 0
		}},
		{args: []string{"--data-root", "/d", "--exec-root=/e", "-H", "unix:///a.sock", "-H", "tcp://127.0.0.1:2375", "--debug"}, check: func(f *engineFlags) bool {
			return f.dataRoot == "/d" && f.execRoot == "/e" && slices.Equal(f.hosts, []string{"unix:///a.sock", "tcp://127.0.0.1:2375"}) &&
				f.debug && f.set["hosts"] && f.set["data-root"] && f.set["debug"]
		}},
		{args: []string{"--host", "unix:///b.sock", "-D"}, check: func(f *engineFlags) bool {
			return slices.Equal(f.hosts, []string{"unix:///b.sock"}) && f.debug && f.set["hosts"]
		}},
		{args: []string{"--host-gateway-ip", "10.0.2.2", "--host-docker-internal"}, check: func(f *engineFlags) bool {
			return f.hostGatewayIP.String() == "10.0.2.2" && f.hostDockerInternal
		}},
		{args: []string{"--host-gateway-ip", "nope"}, wantErr: `"nope" is not an IPv4 address`},
		{args: []string{"--bogus"}, wantErr: "flag provided but not defined"},
		{args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		f, err := parseEngineFlags(tt.args, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(f) {
			t.Errorf("%v: %+v %v", tt.args, f, err)
		}
	}
}

func TestMergeSettings(t *testing.T) {
	flags := func(args ...string) *engineFlags {
		f, err := parseEngineFlags(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	file := func(s string) *daemonConfig {
		c, err := parseDaemonConfig([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name    string
		f       *engineFlags
		c       *daemonConfig
		check   func(*settings) bool
		wantErr string
	}{
		{"defaults", flags(), nil, func(s *settings) bool {
			return slices.Equal(s.hosts, []string{defaultHost}) && s.level == slog.LevelInfo
		}, ""},
		{"file paths", flags(), file(`{"data-root": "/fd", "hosts": ["unix:///f.sock"], "log-level": "warn"}`), func(s *settings) bool {
			return s.dataRoot == "/fd" && slices.Equal(s.hosts, []string{"unix:///f.sock"}) && s.level == slog.LevelWarn
		}, ""},
		{"debug from file", flags(), file(`{"debug": true}`), func(s *settings) bool { return s.debug && s.level == slog.LevelDebug }, ""},
		{"both ways", flags("-H", "unix:///x.sock"), file(`{"hosts": ["unix:///y.sock"]}`), nil,
			"the following directives are specified both as a flag and in the configuration file: hosts: (from flag: [unix:///x.sock], from file: [unix:///y.sock])"},
		{"relative root", flags("--data-root", "rel"), nil, nil, "must be absolute"},
	}
	for _, tt := range tests {
		s, err := mergeSettings(tt.f, tt.c)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(s) {
			t.Errorf("%s: %+v %v", tt.name, s, err)
		}
	}
}
