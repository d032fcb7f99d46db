//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestLayerTarReproducesBytes(t *testing.T) {
	requireRoot(t)
	x := file("etc/conf", "c")
	x.xattrs = map[string]string{"user.k": "v"}
	long := file(strings.Repeat("d/", 60)+"deep", "deep")
	gnu := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: strings.Repeat("g", 150), Typeflag: tar.TypeReg, Size: 3, Mode: 0o644, Format: tar.FormatGNU})
		tw.Write([]byte("gnu"))
		tw.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name string
		tar  []byte
	}{
		{"files and links", makeTar(t, dir("bin/"), file("bin/a", "aaaa"), symlink("bin/sh", "a"), hardlink("bin/b", "bin/a"), file("empty", ""))},
		{"whiteouts", makeTar(t, dir("d/"), file("d/.wh..wh..opq", ""), file(".wh.gone", ""), file("d/new", "n"))},
		{"xattrs and long names", makeTar(t, dir("etc/"), x, long)},
		{"gnu long name", gnu()},
		{"trailing bytes", append(makeTar(t, file("a", "a")), make([]byte, 10240)...)},
		{"empty", makeTar(t)},
		{"big body", makeTar(t, file("big", strings.Repeat("0123456789", 300_000)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			id := digest.FromBytes(tt.tar)
			if _, err := s.ApplyLayer(id, "", bytes.NewReader(tt.tar), ApplyOptions{}, nil); err != nil {
				t.Fatal(err)
			}
			rc, size, err := s.LayerTar(id, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(tt.tar)) || !bytes.Equal(got, tt.tar) {
				t.Fatalf("reproduced %d bytes (said %d), want the original %d", len(got), size, len(tt.tar))
			}
		})
	}
}

func TestLayerTarDetectsLostBytes(t *testing.T) {
	requireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The first body of "a" is overwritten by the second: it cannot come
	// back, and LayerTar must say so rather than give other bytes.
	layer := makeTar(t, file("a", "first"), file("a", "second"))
	id := digest.FromBytes(layer)
	if _, err := s.ApplyLayer(id, "", bytes.NewReader(layer), ApplyOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.LayerTar(id, id)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.Is(err, ErrNoTar) {
		t.Fatalf("LayerTar of an unreproducible layer = %v, want ErrNoTar", err)
	}
}
