package hostshare

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultMaxDirs bounds the folders one Watcher watches: a folder tree
// larger than that (a whole home folder bound into a container) is watched
// in part, and the log says so.
const DefaultMaxDirs = 20000

// coalesce is how long changes to one path are gathered into one event:
// an editor's save is often several writes.
const coalesce = 50 * time.Millisecond

// Watcher watches host folders (and files) recursively and reports their
// changes as FileEvents with VM paths. It ignores attribute-only changes:
// those are what the guest does to re-create an event in the VM, which
// would otherwise come back.
type Watcher struct {
	goos    string
	log     *slog.Logger
	maxDirs int
	fsw     *fsnotify.Watcher
	out     chan FileEvent

	mu      sync.Mutex
	roots   map[string]bool // host paths
	watched map[string]bool // host paths with a watch
	pending map[string]string
	timer   *time.Timer
}

// NewWatcher makes a watcher of host paths for a host of goos.
func NewWatcher(goos string, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("file watcher: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{goos: goos, log: log, maxDirs: DefaultMaxDirs, fsw: fsw, out: make(chan FileEvent, 256),
		roots: map[string]bool{}, watched: map[string]bool{}, pending: map[string]string{}}, nil
}

// Events delivers the changes, VM paths, until Run ends.
func (w *Watcher) Events() <-chan FileEvent { return w.out }

// Close stops watching.
func (w *Watcher) Close() error { return w.fsw.Close() }

// SetRoots makes vmPaths (as the guest names them) the watched trees:
// new ones are watched, folder by folder, and those no longer named are
// dropped. Paths that are not a host path of a share are ignored.
func (w *Watcher) SetRoots(vmPaths []string) {
	want := map[string]bool{}
	for _, p := range vmPaths {
		if hp, ok := HostPathOf(w.goos, p); ok {
			want[hp] = true
		}
	}
	w.mu.Lock()
	var added []string
	for r := range want {
		if !w.roots[r] {
			added = append(added, r)
		}
	}
	for r := range w.roots {
		if !want[r] {
			for p := range w.watched {
				if (p == r || strings.HasPrefix(p, r+string(filepath.Separator))) && !underAny(p, want) {
					w.fsw.Remove(p)
					delete(w.watched, p)
				}
			}
		}
	}
	w.roots = want
	w.mu.Unlock()
	for _, r := range added {
		w.addTree(r, false)
	}
}

func underAny(p string, roots map[string]bool) bool {
	for r := range roots {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// addTree watches root and the folders under it; with announce, the files
// found are reported as created (a folder made with its content, or moved
// in, before its watch existed).
func (w *Watcher) addTree(root string, announce bool) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone or unreadable: nothing to watch there
		}
		if announce && p != root {
			w.queue(p, OpCreate)
		}
		if !d.IsDir() && p != root {
			return nil
		}
		w.mu.Lock()
		full := len(w.watched) >= w.maxDirs
		already := w.watched[p]
		w.mu.Unlock()
		if already {
			return nil
		}
		if full {
			w.log.Warn("file events: too many folders to watch; changes deeper in are not seen in the VM", "root", root, "max", w.maxDirs)
			return filepath.SkipAll
		}
		if err := w.fsw.Add(p); err != nil {
			w.log.Debug("file events: watch", "path", p, "err", err)
			return nil
		}
		w.mu.Lock()
		w.watched[p] = true
		w.mu.Unlock()
		return nil
	})
	if err != nil {
		w.log.Debug("file events: walk", "root", root, "err", err)
	}
}

// Run turns the host's notifications into events until ctx ends or the
// watcher is closed; it closes Events when it returns.
func (w *Watcher) Run(ctx context.Context) {
	defer close(w.out)
	flush := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.handle(ev, flush)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("file events: watcher", "err", err)
		case <-flush:
			if !w.send(ctx) {
				return
			}
		}
	}
}

func (w *Watcher) handle(ev fsnotify.Event, flush chan struct{}) {
	switch {
	case ev.Has(fsnotify.Create):
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			w.addTree(ev.Name, true)
		}
		w.queue(ev.Name, OpCreate)
	case ev.Has(fsnotify.Write):
		w.queue(ev.Name, OpWrite)
	case ev.Has(fsnotify.Remove):
		w.forget(ev.Name)
		w.queue(ev.Name, OpRemove)
	case ev.Has(fsnotify.Rename):
		w.forget(ev.Name)
		w.queue(ev.Name, OpRename)
	default:
		return // attributes only
	}
	w.mu.Lock()
	if w.timer == nil {
		w.timer = time.AfterFunc(coalesce, func() {
			select {
			case flush <- struct{}{}:
			default:
			}
		})
	}
	w.mu.Unlock()
}

// queue records a change of p; a later change of the same path within the
// coalescing time replaces it, except that a create stays a create.
func (w *Watcher) queue(p, op string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev := w.pending[p]; prev == OpCreate && op == OpWrite {
		return
	}
	w.pending[p] = op
}

// forget drops the watches of a folder that went away, and under it.
func (w *Watcher) forget(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for q := range w.watched {
		if q == p || strings.HasPrefix(q, p+string(filepath.Separator)) {
			delete(w.watched, q)
		}
	}
}

// send delivers the gathered changes, each with the file's times.
func (w *Watcher) send(ctx context.Context) bool {
	w.mu.Lock()
	pending := w.pending
	w.pending = map[string]string{}
	w.timer = nil
	w.mu.Unlock()
	for p, op := range pending {
		e := FileEvent{Op: op, Path: VMPath(w.goos, p)}
		if op == OpCreate || op == OpWrite {
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				e.Op = OpRemove
			} else if err == nil {
				e.Mtime = fi.ModTime().UnixNano()
				e.Atime = atime(fi).UnixNano()
			}
		}
		select {
		case w.out <- e:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
