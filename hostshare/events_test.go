package hostshare

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseFileEvent(t *testing.T) {
	for _, tt := range []struct {
		line string
		ok   bool
	}{
		{`{"op":"create","path":"/home/me/x","mtime":1,"atime":2}`, true},
		{`{"op":"remove","path":"/home/me/x"}`, true},
		{`{"op":"chmod","path":"/home/me/x"}`, false},
		{`{"op":"write","path":"relative"}`, false},
		{`{"op":"write","path":"/a/../b"}`, false},
		{`{"op":"write","path":"/a","mtime":-1}`, false},
		{`not json`, false},
	} {
		_, err := ParseFileEvent([]byte(tt.line))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.line, err)
		}
	}
	if _, err := ParseWatchRequest([]byte(`{"watch":["/a","/b/c"]}`)); err != nil {
		t.Error(err)
	}
	if _, err := ParseWatchRequest([]byte(`{"watch":["a"]}`)); err == nil {
		t.Error("relative watch path accepted")
	}
}

func FuzzParseFileEvent(f *testing.F) {
	f.Add([]byte(`{"op":"create","path":"/home/me/x","mtime":1}`))
	f.Add([]byte(`{"watch":["/a"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := ParseFileEvent(b); err == nil {
			if e.Path == "" || e.Path[0] != '/' {
				t.Fatalf("accepted path %q", e.Path)
			}
		}
		if w, err := ParseWatchRequest(b); err == nil {
			for _, p := range w.Watch {
				if p == "" || p[0] != '/' {
					t.Fatalf("accepted watch %q", p)
				}
			}
		}
	})
}

func TestHostPathOf(t *testing.T) {
	for _, tt := range []struct{ goos, vm, host string }{
		{"linux", "/home/me/src", "/home/me/src"},
		{"darwin", "/Users/me", "/Users/me"},
		{"windows", "/run/host/c/Users/me/x", `C:\Users\me\x`},
		{"windows", "/run/host/unc/server/share/d", `\\server\share\d`},
		{"windows", "/home/x", ""},
	} {
		got, ok := HostPathOf(tt.goos, tt.vm)
		if got != tt.host || ok != (tt.host != "") {
			t.Errorf("HostPathOf(%s, %s) = %q %v, want %q", tt.goos, tt.vm, got, ok, tt.host)
		}
		if ok {
			if back := VMPath(tt.goos, got); back != tt.vm {
				t.Errorf("VMPath(%s) = %s, want %s", got, back, tt.vm)
			}
		}
	}
}

// TestWatcher: changes under a watched tree come out as events with their
// times; a folder made later is watched too; attribute changes do not.
func TestWatcher(t *testing.T) {
	root := t.TempDir()
	w, err := NewWatcher("linux", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go w.Run(ctx)
	w.SetRoots([]string{root})
	next := func(want string) FileEvent {
		t.Helper()
		for {
			select {
			case e := <-w.Events():
				if e.Path == want {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no event for %s", want)
			}
		}
	}
	f := filepath.Join(root, "a.txt")
	os.WriteFile(f, []byte("1"), 0o644)
	e := next(f)
	fi, _ := os.Stat(f)
	if e.Op != OpCreate || e.Mtime != fi.ModTime().UnixNano() {
		t.Fatalf("create: %+v (mtime %d)", e, fi.ModTime().UnixNano())
	}
	os.WriteFile(f, []byte("12"), 0o644)
	if e := next(f); e.Op != OpWrite {
		t.Fatalf("write: %+v", e)
	}
	sub := filepath.Join(root, "sub")
	os.Mkdir(sub, 0o755)
	next(sub)
	g := filepath.Join(sub, "b.txt")
	os.WriteFile(g, nil, 0o644)
	next(g)
	// Only attributes: nothing; then a removal.
	os.Chmod(g, 0o600)
	os.Chtimes(g, time.Now(), time.Now())
	os.Remove(g)
	if e := next(g); e.Op != OpRemove {
		t.Fatalf("after chmod and remove: %+v", e)
	}
	h := filepath.Join(root, "c.txt")
	os.Rename(f, h)
	if e := next(f); e.Op != OpRename {
		t.Fatalf("rename, old name: %+v", e)
	}
	if e := next(h); e.Op != OpCreate {
		t.Fatalf("rename, new name: %+v", e)
	}
	// A tree no longer named is no longer watched.
	w.SetRoots(nil)
	os.WriteFile(filepath.Join(root, "late"), nil, 0o644)
	select {
	case e := <-w.Events():
		t.Fatalf("event after the roots were dropped: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}
