package link

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/berthdesktop/berth/hostshare"
)

// BindSink learns the bind-mount sources of the engine's running
// containers (EnginePorts feeds it): sources nil when a container stopped.
type BindSink interface {
	SetBinds(containerID string, sources []string)
}

// FileEvents serves port 1027: it tells the host which VM paths the
// running containers bind (the host watches those), and re-creates in the
// VM each change the host reports under them, so that inotify watchers in
// containers see it. A shared folder's filesystem does not pass the
// host's notifications on; a change made in the VM through it is
// notified already.
//
// A change becomes an attribute event (IN_ATTRIB) on the file, the file's
// times set to the values they have on the host (so the host sees no
// change), and for a removal or a rename, on the folder that held it: the
// watchers of dev servers (chokidar, webpack, nodemon, watchdog) rescan on
// it. The VM cannot make a creation or a removal event for a file the
// host made or removed.
type FileEvents struct {
	Log *slog.Logger

	mu    sync.Mutex
	binds map[string][]string
	conn  net.Conn // the host's stream, when one is open
	wmu   sync.Mutex
}

func (f *FileEvents) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// SetBinds implements BindSink.
func (f *FileEvents) SetBinds(id string, sources []string) {
	f.mu.Lock()
	if f.binds == nil {
		f.binds = map[string][]string{}
	}
	if len(sources) == 0 {
		delete(f.binds, id)
	} else {
		f.binds[id] = sources
	}
	conn := f.conn
	f.mu.Unlock()
	if conn != nil {
		f.sendWatch(conn)
	}
}

// watchSet is the union of the bound sources, sorted.
func (f *FileEvents) watchSet() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := []string{}
	for _, srcs := range f.binds {
		for _, s := range srcs {
			if !slices.Contains(set, s) {
				set = append(set, s)
			}
		}
	}
	slices.Sort(set)
	return set
}

func (f *FileEvents) sendWatch(conn net.Conn) {
	b, _ := json.Marshal(hostshare.WatchRequest{Watch: f.watchSet()})
	f.wmu.Lock()
	defer f.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append(b, '\n')); err != nil {
		f.log().Debug("file events: send watch set", "err", err)
	}
}

// ServeConn serves one host stream: the watch set now and at each change,
// and the host's changes applied as they come. A newer stream replaces it.
func (f *FileEvents) ServeConn(conn net.Conn) {
	defer conn.Close()
	f.mu.Lock()
	if old := f.conn; old != nil {
		old.Close()
	}
	f.conn = conn
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.conn == conn {
			f.conn = nil
		}
		f.mu.Unlock()
	}()
	f.sendWatch(conn)
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 4096), 16<<10)
	for sc.Scan() {
		e, err := hostshare.ParseFileEvent(sc.Bytes())
		if err != nil {
			f.log().Warn("file events: bad event from the host", "err", err)
			continue
		}
		f.Apply(e)
	}
}

// Apply re-creates one host change in the VM (see FileEvents).
func (f *FileEvents) Apply(e hostshare.FileEvent) {
	target := e.Path
	atime, mtime := e.Times()
	switch e.Op {
	case hostshare.OpRemove, hostshare.OpRename:
		target = filepath.Dir(e.Path)
		atime, mtime = time.Time{}, time.Time{}
	}
	fi, err := os.Lstat(target)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.log().Debug("file events: stat", "path", target, "err", err)
		}
		return
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return // times of a link cannot be set without following it
	}
	if mtime.IsZero() {
		mtime = fi.ModTime()
	}
	if atime.IsZero() {
		atime = mtime
	}
	if err := os.Chtimes(target, atime, mtime); err != nil {
		f.log().Debug("file events: touch", "path", target, "err", err)
	}
}
