package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseModuleList(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []Module
		wantErr bool
	}{
		{"deps before", "/m/a.ko:\n/m/b.ko: /m/a.ko\n\n# comment\n/m/c.ko: /m/a.ko /m/b.ko\n",
			[]Module{{"/m/a.ko", nil}, {"/m/b.ko", []string{"/m/a.ko"}}, {"/m/c.ko", []string{"/m/a.ko", "/m/b.ko"}}}, false},
		{"no colon", "/m/a.ko\n", []Module{{"/m/a.ko", nil}}, false},
		{"dep after", "/m/b.ko: /m/a.ko\n/m/a.ko:\n", nil, true},
		{"self dep", "/m/a.ko: /m/a.ko\n", nil, true},
		{"repeat", "/m/a.ko:\n/m/a.ko:\n", nil, true},
		{"relative", "m/a.ko:\n", nil, true},
		{"unclean", "/m/../a.ko:\n", nil, true},
		{"empty", "", nil, false},
		{"dep in an earlier list", "/m/x.ko: /k/virtio.ko\n", []Module{{"/m/x.ko", []string{"/k/virtio.ko"}}}, false},
		{"dep in no list", "/m/x.ko: /k/other.ko\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseModuleList(tt.text, map[string]bool{"/k/virtio.ko": true})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, ErrBadModuleList) {
				t.Fatalf("err %v is not ErrBadModuleList", err)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseModuleList(f *testing.F) {
	f.Add("/m/a.ko:\n/m/b.ko: /m/a.ko\n")
	f.Fuzz(func(t *testing.T, text string) {
		mods, err := ParseModuleList(text, nil)
		if err != nil {
			return
		}
		pos := map[string]int{}
		for i, m := range mods {
			for _, d := range m.Deps {
				if j, ok := pos[d]; !ok || j >= i {
					t.Fatalf("%s needs %s, not before it", m.Path, d)
				}
			}
			pos[m.Path] = i
		}
	})
}

// TestLoadInOrder checks every module loads after its dependencies, that a
// failure skips what needs it, and that no more than the worker count run
// at once.
func TestLoadInOrder(t *testing.T) {
	mods := []Module{
		{"/a", nil}, {"/b", []string{"/a"}}, {"/c", nil}, {"/d", []string{"/b", "/c"}},
		{"/bad", nil}, {"/needsbad", []string{"/bad"}}, {"/e", nil}, {"/f", nil},
	}
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			var mu sync.Mutex
			loaded := map[string]bool{}
			running, peak := 0, 0
			load := func(p string) error {
				mu.Lock()
				running++
				peak = max(peak, running)
				for _, m := range mods {
					if m.Path == p {
						for _, d := range m.Deps {
							if !loaded[d] {
								t.Errorf("%s loaded before its dependency %s", p, d)
							}
						}
					}
				}
				mu.Unlock()
				defer func() {
					mu.Lock()
					running--
					mu.Unlock()
				}()
				if p == "/bad" {
					return errors.New("no such symbol")
				}
				mu.Lock()
				loaded[p] = true
				mu.Unlock()
				return nil
			}
			err := loadInOrder(slog.New(slog.DiscardHandler), mods, workers, load, nil)
			if err == nil {
				t.Fatal("a failed module went unreported")
			}
			if loaded["/needsbad"] {
				t.Error("a module whose dependency failed was loaded")
			}
			for _, p := range []string{"/a", "/b", "/c", "/d", "/e", "/f"} {
				if !loaded[p] {
					t.Errorf("%s not loaded", p)
				}
			}
			if peak > workers {
				t.Errorf("%d loads at once with %d workers", peak, workers)
			}
		})
	}
}

// TestStartModules checks the lists load as one graph in priority order
// (earlier list, then earlier line, among the ready ones), that a module in
// two lists loads once, and that wait returns once its list has ended.
func TestStartModules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boot := write("boot", "/core:\n/disk: /core\n/net: /core\n")
	engine := write("engine", "/overlay:\n/llc:\n/bridge: /llc\n/core:\n")
	late := write("late", "/vsock: /core\n/button:\n")
	bad := write("bad", "relative.ko:\n")
	missing := filepath.Join(dir, "missing")

	t.Run("order with one worker", func(t *testing.T) {
		var mu sync.Mutex
		var order []string
		load := func(p string) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, p)
			return nil
		}
		l := startModules(slog.New(slog.DiscardHandler), 1, load, boot, engine, late, bad, missing)
		for _, f := range []string{boot, engine, late, bad, missing} {
			l.wait(f)
		}
		mu.Lock()
		defer mu.Unlock()
		if got, want := strings.Join(order, " "), "/core /disk /net /overlay /llc /bridge /vsock /button"; got != want {
			t.Errorf("load order %q, want %q", got, want)
		}
	})

	t.Run("the first list one at a time with two workers", func(t *testing.T) {
		var mu sync.Mutex
		var order []string
		running := 0
		load := func(p string) error {
			first := p == "/core" || p == "/disk" || p == "/net"
			mu.Lock()
			if first {
				running++
				if running > 1 {
					t.Errorf("%s loads beside another module of the first list", p)
				}
				order = append(order, p)
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			if first {
				mu.Lock()
				running--
				mu.Unlock()
			}
			return nil
		}
		l := startModules(slog.New(slog.DiscardHandler), 2, load, boot, engine, late)
		l.wait(boot)
		l.wait(engine)
		l.wait(late)
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(order, " "); got != "/core /disk /net" {
			t.Errorf("first list loaded as %q", got)
		}
	})

	t.Run("waits with two workers", func(t *testing.T) {
		var mu sync.Mutex
		done := map[string]bool{}
		release := make(chan struct{})
		load := func(p string) error {
			if p == "/vsock" {
				<-release // the late list stays unfinished
			}
			mu.Lock()
			done[p] = true
			mu.Unlock()
			return nil
		}
		l := startModules(slog.New(slog.DiscardHandler), 2, load, boot, engine, late)
		l.wait(boot)
		l.wait(engine)
		mu.Lock()
		for _, p := range []string{"/core", "/disk", "/net", "/overlay", "/llc", "/bridge"} {
			if !done[p] {
				t.Errorf("%s not loaded when its list's wait returned", p)
			}
		}
		mu.Unlock()
		waited := make(chan struct{})
		go func() { l.wait(late); close(waited) }()
		select {
		case <-waited:
			t.Fatal("wait for the late list returned before /vsock loaded")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		<-waited
	})
}
