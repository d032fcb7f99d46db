package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		version string
		name    string
		prefix  string
	}{
		{version: "dev", name: "berth", prefix: "berth dev ("},
		{version: "v0.1.0-3-gabc", name: "berth-agent", prefix: "berth-agent v0.1.0-3-gabc ("},
	}
	saved := Version
	defer func() { Version = saved }()
	for _, tt := range tests {
		Version = tt.version
		got := String(tt.name)
		if !strings.HasPrefix(got, tt.prefix) {
			t.Errorf("String(%q) = %q, want prefix %q", tt.name, got, tt.prefix)
		}
		if !strings.Contains(got, runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("String(%q) = %q, lacks the platform", tt.name, got)
		}
	}
}
