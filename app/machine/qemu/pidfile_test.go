package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/machine"
)

func TestParsePID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"1234\n", 1234, true},
		{" 7 ", 7, true},
		{"0\n", 0, false},
		{"-3", 0, false},
		{"abc", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := parsePID(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePID(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func FuzzParsePID(f *testing.F) {
	f.Add("1234\n")
	f.Fuzz(func(t *testing.T, s string) {
		if pid, err := parsePID(s); err == nil && pid <= 0 {
			t.Fatalf("accepted pid %d", pid)
		}
	})
}

func TestRunningPID(t *testing.T) {
	dir := t.TempDir()
	if pid, err := RunningPID(dir); pid != 0 || err != nil {
		t.Fatalf("no pid file: %d, %v", pid, err)
	}
	// A live process that is not QEMU (this test) is not taken for one.
	os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	if pid, err := RunningPID(dir); pid != 0 || err != nil {
		t.Fatalf("pid of a non-QEMU process: %d, %v", pid, err)
	}
	os.WriteFile(filepath.Join(dir, pidFile), []byte("garbage"), 0o600)
	if _, err := RunningPID(dir); err == nil {
		t.Fatal("garbage pid file accepted")
	}
}

// TestSecondInstanceRefused: a second VM object on the same state folder
// (as a second Berth process would make) refuses to start while QEMU runs.
func TestSecondInstanceRefused(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	cfg := bootConfig(t, testKernel(t), busyboxInitrd(t))
	first, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		defer scancel()
		first.Stop(sctx)
	}()
	if pid, err := RunningPID(cfg.StateDir); err != nil || pid != first.PID() {
		t.Fatalf("RunningPID %d, %v; want %d", pid, err, first.PID())
	}
	second, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(ctx); !errors.Is(err, machine.ErrAlreadyRunning) {
		t.Fatalf("second instance Start: %v, want ErrAlreadyRunning", err)
	}
}
