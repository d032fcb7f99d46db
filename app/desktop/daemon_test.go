package desktop

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/app/forward"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

func TestParsePID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"123\n", 123, true},
		{" 7 ", 7, true},
		{"", 0, false},
		{"0\n", 0, false},
		{"-5", 0, false},
		{"12x", 0, false},
	}
	for _, tt := range tests {
		got, err := parsePID([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parsePID(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParsePID(f *testing.F) {
	for _, s := range []string{"1\n", "", "x", "99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := parsePID(b)
		if err != nil {
			return
		}
		if pid <= 0 {
			t.Fatalf("parsePID(%q) = %d, not positive", b, pid)
		}
		// What a pid file writes reads back the same.
		if again, err := parsePID([]byte(strconv.Itoa(pid) + "\n")); err != nil || again != pid {
			t.Fatalf("round trip of %d: %d, %v", pid, again, err)
		}
	})
}

func TestHintFor(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", machine.ErrNotAvailable), "install QEMU"},
		{fmt.Errorf("x: %w", machine.ErrCrashed), "berth logs"},
		{fmt.Errorf("x: %w", forward.ErrInUse), "BERTH_HOME"},
		{fmt.Errorf("x: %w", machine.ErrAlreadyRunning), "berth stop"},
		{fmt.Errorf("x: %w", hostlink.ErrEngineFailed), "berth restart"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "in time"},
		{errors.New("other"), "berth start"},
	}
	for _, tt := range tests {
		if got := hintFor(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("hintFor(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
	}
}
