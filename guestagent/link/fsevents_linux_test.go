package link

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/hostshare"
)

// TestFileEventsApply: a host change becomes an inotify attribute event in
// the VM, the file's times set to the host's values; a removal touches the
// folder. The watch set follows the containers' binds.
func TestFileEventsApply(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "x")
	os.WriteFile(f, []byte("x"), 0o644)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_ALL_EVENTS); err != nil {
		t.Fatal(err)
	}
	fe := &FileEvents{}
	a, b := net.Pipe()
	go fe.ServeConn(a)
	sc := bufio.NewScanner(b)
	readWatch := func() []string {
		t.Helper()
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if !sc.Scan() {
			t.Fatal("no watch line")
		}
		w, err := hostshare.ParseWatchRequest(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return w.Watch
	}
	if w := readWatch(); len(w) != 0 {
		t.Fatalf("first watch set %q", w)
	}
	go fe.SetBinds("c1", []string{dir})
	if w := readWatch(); len(w) != 1 || w[0] != dir {
		t.Fatalf("watch set %q", w)
	}
	mtime := time.Unix(1700000000, 123)
	line, _ := json.Marshal(hostshare.FileEvent{Op: hostshare.OpCreate, Path: f, Mtime: mtime.UnixNano(), Atime: mtime.UnixNano()})
	b.Write(append(line, '\n'))
	ev := waitInotify(t, fd)
	if ev.mask&unix.IN_ATTRIB == 0 || ev.name != "x" {
		t.Fatalf("event %+v", ev)
	}
	fi, _ := os.Stat(f)
	if !fi.ModTime().Equal(mtime) {
		t.Fatalf("mtime %v, want the host's %v", fi.ModTime(), mtime)
	}
	line, _ = json.Marshal(hostshare.FileEvent{Op: hostshare.OpRemove, Path: filepath.Join(dir, "gone")})
	b.Write(append(line, '\n'))
	if ev := waitInotify(t, fd); ev.mask&unix.IN_ATTRIB == 0 || ev.name != "" {
		t.Fatalf("event after a removal %+v", ev)
	}
	go fe.SetBinds("c1", nil)
	if w := readWatch(); len(w) != 0 {
		t.Fatalf("watch set after the container stopped %q", w)
	}
	b.Close()
}

type inotifyEvent struct {
	mask uint32
	name string
}

func waitInotify(t *testing.T, fd int) inotifyEvent {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[0]))
			name := ""
			if raw.Len > 0 {
				nb := buf[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+int(raw.Len)]
				for i, c := range nb {
					if c == 0 {
						nb = nb[:i]
						break
					}
				}
				name = string(nb)
			}
			return inotifyEvent{mask: raw.Mask, name: name}
		}
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no inotify event")
	return inotifyEvent{}
}
