//go:build linux

package engine

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestTopFormat(t *testing.T) {
	tests := []struct {
		args    string
		titles  []string
		wantErr string
	}{
		{"", []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, ""},
		{"-ef", []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, ""},
		{"aux", []string{"USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND"}, ""},
		{"-o pid,args", []string{"PID", "COMMAND"}, ""},
		{"-eo pid,comm", []string{"PID", "COMMAND"}, ""},
		{"-ex", nil, "option -ex is not supported"},
		{"-e -o pid,comm", []string{"PID", "COMMAND"}, ""},
		{"-opid,user=WHO", []string{"PID", "WHO"}, ""},
		{"o pid,etime", []string{"PID", "ELAPSED"}, ""},
		{"-o bogus", nil, "unknown column"},
		{"-o", nil, "needs a list"},
		{"--sort x", nil, "not supported"},
	}
	for _, tt := range tests {
		cols, err := topFormat(tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("topFormat(%q) err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("topFormat(%q): %v", tt.args, err)
		}
		var titles []string
		for _, c := range cols {
			titles = append(titles, c.title)
		}
		if !slices.Equal(titles, tt.titles) {
			t.Errorf("topFormat(%q) = %v, want %v", tt.args, titles, tt.titles)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.pid != os.Getpid() || p.ppid != os.Getppid() || p.uid != os.Getuid() || !strings.Contains(p.cmdline, "engine.test") {
		t.Errorf("readProc(self) = %+v", p)
	}
}

func FuzzTopFormat(f *testing.F) {
	f.Add("aux")
	f.Add("-o pid,user=U,args")
	f.Fuzz(func(t *testing.T, s string) {
		cols, err := topFormat(s)
		if err == nil && len(cols) == 0 {
			t.Fatalf("topFormat(%q) accepted with no columns", s)
		}
	})
}
