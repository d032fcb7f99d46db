package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestIngest(t *testing.T) {
	good := []byte("hello, blob")
	goodDigest := digest.FromBytes(good)
	tests := []struct {
		name     string
		reader   func() io.Reader
		expected digest.Digest
		size     int64
		wantErr  bool
		visible  bool
	}{
		{"computed digest", func() io.Reader { return bytes.NewReader(good) }, "", -1, false, true},
		{"expected digest", func() io.Reader { return bytes.NewReader(good) }, goodDigest, int64(len(good)), false, true},
		{"wrong digest", func() io.Reader { return bytes.NewReader(good) }, digest.FromString("other"), -1, true, false},
		{"wrong size", func() io.Reader { return bytes.NewReader(good) }, goodDigest, 3, true, false},
		{"reader fails midway", func() io.Reader { return &failingReader{data: good[:4], err: errors.New("boom")} }, goodDigest, -1, true, false},
		{"bad algorithm", func() io.Reader { return bytes.NewReader(good) }, digest.Digest("sha512:" + strings.Repeat("a", 128)), -1, true, false},
		{"malformed digest", func() io.Reader { return bytes.NewReader(good) }, digest.Digest("sha256:../../etc"), -1, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Ingest(context.Background(), tc.reader(), tc.expected, tc.size)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Ingest error = %v, want error %v", err, tc.wantErr)
			}
			_, statErr := s.Info(goodDigest)
			if visible := statErr == nil; visible != tc.visible {
				t.Fatalf("blob visible = %v, want %v (%v)", visible, tc.visible, statErr)
			}
			if !tc.wantErr && (info.Digest != goodDigest || info.Size != int64(len(good))) {
				t.Fatalf("Info = %+v", info)
			}
			// Nothing is left behind in ingest/.
			left, _ := os.ReadDir(filepath.Join(s.root, "ingest"))
			if len(left) != 0 {
				t.Fatalf("ingest directory not empty: %v", left)
			}
		})
	}
}

func TestReadWalkDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs := [][]byte{[]byte("one"), []byte("two two"), {}}
	want := map[digest.Digest]int64{}
	for _, b := range blobs {
		info, err := s.Ingest(context.Background(), bytes.NewReader(b), "", -1)
		if err != nil {
			t.Fatal(err)
		}
		want[info.Digest] = int64(len(b))
		ra, err := s.ReaderAt(info.Digest)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, ra.Size())
		if _, err := ra.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		ra.Close()
		if !bytes.Equal(got, b) {
			t.Fatalf("ReadAt = %q, want %q", got, b)
		}
		all, err := s.ReadAll(info.Digest)
		if err != nil || !bytes.Equal(all, b) {
			t.Fatalf("ReadAll = %q, %v", all, err)
		}
	}
	// A leftover temp file does not show up in Walk.
	if err := os.WriteFile(filepath.Join(s.root, "blobs", "sha256", ".tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[digest.Digest]int64{}
	if err := s.Walk(func(i Info) error { seen[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("Walk saw %v, want %v", seen, want)
	}
	for d, n := range want {
		if seen[d] != n {
			t.Fatalf("Walk size of %s = %d, want %d", d, seen[d], n)
		}
	}
	d := digest.FromBytes(blobs[0])
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Delete":   s.Delete(d),
		"Info":     func() error { _, err := s.Info(d); return err }(),
		"ReaderAt": func() error { _, err := s.ReaderAt(d); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after delete = %v, want ErrNotFound", name, err)
		}
		var nf interface{ NotFound() }
		if !errors.As(err, &nf) {
			t.Fatalf("%s error has no NotFound()", name)
		}
	}
}

func TestOpenClearsInterruptedIngest(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ingest", "blob-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "ingest"))
	if len(left) != 0 {
		t.Fatalf("interrupted ingest left %v", left)
	}
}

func TestIngestCancelled(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Ingest(ctx, strings.NewReader("x"), "", -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ingest with cancelled context = %v", err)
	}
}
