package logs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func collect(t *testing.T, path string, w *File, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(path, w, opts, nil, func(e Entry) bool {
		got = append(got, e.Stream+":"+e.Log)
		return true
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in      map[string]string
		want    Options
		wantErr string
	}{
		{in: nil, want: Options{}},
		{in: map[string]string{"max-size": "10k", "max-file": "3"}, want: Options{MaxSize: 10000, MaxFiles: 3}},
		{in: map[string]string{"max-size": "1m"}, want: Options{MaxSize: 1000000}},
		{in: map[string]string{"max-size": "x"}, wantErr: "invalid max-size"},
		{in: map[string]string{"max-file": "0", "max-size": "1k"}, wantErr: "max-file cannot be less than 1"},
		{in: map[string]string{"max-file": "2"}, wantErr: "max-file cannot be set without max-size"},
		{in: map[string]string{"foo": "bar"}, wantErr: "unknown log opt 'foo'"},
	}
	for _, tt := range tests {
		got, err := ParseOptions(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseOptions(%v) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseOptions(%v) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestWriteReadTailSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		if err := w.Write(stream, fmt.Appendf(nil, "line %d\n", i), base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	tests := []struct {
		name string
		opts ReadOptions
		want []string
	}{
		{"all", ReadOptions{Tail: -1}, nil},
		{"tail 2", ReadOptions{Tail: 2}, []string{"stdout:line 8\n", "stderr:line 9\n"}},
		{"tail 0", ReadOptions{Tail: 0}, []string{}},
		{"since", ReadOptions{Tail: -1, Since: base.Add(8 * time.Second)}, []string{"stdout:line 8\n", "stderr:line 9\n"}},
		{"until", ReadOptions{Tail: -1, Until: base.Add(1 * time.Second)}, []string{"stdout:line 0\n", "stderr:line 1\n"}},
		{"since+tail", ReadOptions{Tail: 1, Since: base.Add(5 * time.Second), Until: base.Add(6 * time.Second)}, []string{"stdout:line 6\n"}},
	}
	for _, tt := range tests {
		got := collect(t, path, nil, tt.opts)
		if tt.want == nil {
			if len(got) != 10 {
				t.Errorf("%s: got %d entries, want 10", tt.name, len(got))
			}
			continue
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	raw, _ := os.ReadFile(path)
	first := strings.SplitN(string(raw), "\n", 2)[0]
	if first != `{"log":"line 0\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}` {
		t.Errorf("line format = %s", first)
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		maxFiles  int
		wantFiles int
	}{
		{1, 1},
		{2, 2},
		{3, 3},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		path := filepath.Join(dir, "c-json.log")
		w, err := Open(path, Options{MaxSize: 200, MaxFiles: tt.maxFiles})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if err := w.Write("stdout", fmt.Appendf(nil, "line %02d\n", i), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		names, _ := filepath.Glob(path + "*")
		if len(names) != tt.wantFiles {
			t.Errorf("max-file %d: %d files %v, want %d", tt.maxFiles, len(names), names, tt.wantFiles)
		}
		for _, n := range names {
			st, _ := os.Stat(n)
			if st.Size() > 200 {
				t.Errorf("max-file %d: %s is %d bytes > max-size", tt.maxFiles, n, st.Size())
			}
		}
		got := collect(t, path, nil, ReadOptions{Tail: -1})
		if len(got) == 0 || got[len(got)-1] != "stdout:line 49\n" {
			t.Fatalf("max-file %d: last = %q", tt.maxFiles, got)
		}
		// The entries read are consecutive and end with the last one.
		for i, g := range got {
			want := fmt.Sprintf("stdout:line %02d\n", 50-len(got)+i)
			if g != want {
				t.Errorf("max-file %d: entry %d = %q, want %q", tt.maxFiles, i, g, want)
			}
		}
		if err := Remove(path); err != nil {
			t.Fatal(err)
		}
		if names, _ := filepath.Glob(path + "*"); len(names) != 0 {
			t.Errorf("Remove left %v", names)
		}
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, Options{MaxSize: 300, MaxFiles: 50})
	if err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("before\n"), time.Now())
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- Read(path, w, ReadOptions{Tail: -1, Follow: true}, nil, func(e Entry) bool {
			got <- e.Log
			return true
		})
	}()
	if first := <-got; first != "before\n" {
		t.Fatalf("first = %q", first)
	}
	// One line at a time: each rotation is seen by the follower.
	for i := range 10 {
		if err := w.Write("stdout", fmt.Appendf(nil, "step %02d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
		if g, want := <-got, fmt.Sprintf("step %02d\n", i); g != want {
			t.Fatalf("followed %q, want %q", g, want)
		}
	}
	// A burst of rotations between two wake-ups: the intermediate files are
	// read too (max-file is large enough to keep them all).
	const n = 20
	for i := range n {
		if err := w.Write("stdout", fmt.Appendf(nil, "after %02d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		want := fmt.Sprintf("after %02d\n", i)
		if g := <-got; g != want {
			t.Fatalf("followed %q, want %q", g, want)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
}

// TestFollowTruncating follows a log that is truncated at each rotation
// (max-file 1): every line written one at a time is seen.
func TestFollowTruncating(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, Options{MaxSize: 150, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- Read(path, w, ReadOptions{Tail: -1, Follow: true}, nil, func(e Entry) bool {
			got <- e.Log
			return true
		})
	}()
	for i := range 20 {
		if err := w.Write("stdout", fmt.Appendf(nil, "t %02d\n", i), time.Now()); err != nil {
			t.Fatal(err)
		}
		if g, want := <-got, fmt.Sprintf("t %02d\n", i); g != want {
			t.Fatalf("followed %q, want %q", g, want)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFollowStopsOnDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- Read(path, w, ReadOptions{Tail: -1, Follow: true}, stop, func(Entry) bool { return true })
	}()
	close(stop)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func FuzzParseEntries(f *testing.F) {
	f.Add([]byte(`{"log":"hi\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte("garbage\n{\"log\":1}\n{"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseEntries(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("ParseEntries: %v", err)
		}
		if len(entries) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d entries from %d lines", len(entries), bytes.Count(data, []byte("\n"))+1)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	f.Add("max-size", "10m", "max-file", "3")
	f.Add("max-size", "-1", "foo", "x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		o, err := ParseOptions(map[string]string{k1: v1, k2: v2})
		if err == nil && (o.MaxSize < 0 || o.MaxFiles < 0) {
			t.Fatalf("accepted negative options %+v", o)
		}
	})
}
