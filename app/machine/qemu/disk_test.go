//go:build !windows

package qemu

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestEnsureDisk(t *testing.T) {
	tests := []struct {
		name     string
		existing int64 // -1: no file
		size     int64
		wantSize int64
		wantGrew bool
	}{
		{"create", -1, 1 << 30, 1 << 30, false},
		{"grow", 1 << 20, 1 << 30, 1 << 30, true},
		{"never shrink", 1 << 30, 1 << 20, 1 << 30, false},
		{"same size", 1 << 20, 1 << 20, 1 << 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "data.img")
			if tc.existing >= 0 {
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := os.WriteFile(path, []byte("ext4 lives here"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			grew, err := ensureDisk(path, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != tc.wantSize || grew != tc.wantGrew {
				t.Fatalf("size %d grew %v; want %d %v", fi.Size(), grew, tc.wantSize, tc.wantGrew)
			}
			if blocks := fi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
				t.Fatalf("disk uses %d bytes: not sparse", blocks)
			}
			if tc.existing > 0 {
				b := make([]byte, 15)
				f, _ := os.Open(path)
				f.Read(b)
				f.Close()
				if string(b) != "ext4 lives here" {
					t.Fatalf("content lost: %q", b)
				}
			}
		})
	}
}
