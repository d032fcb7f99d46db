package hostshare

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// File-change events under the shared folders cross the channel (port
// 1027) as JSON lines both ways: the guest sends WatchRequest lines (the
// VM paths its containers bind, in full each time), the host FileEvent
// lines for changes under them. A file share does not carry the host's
// inotify events into the VM; the guest re-creates them (see FileEvent).

// The operations of a FileEvent.
const (
	OpCreate = "create"
	OpWrite  = "write"
	OpRemove = "remove"
	OpRename = "rename" // Path is the old name; the new one comes as create
)

// FileEvent is one change on the host, under a path the guest watches.
// Path is the VM's path. Mtime and Atime are the file's times after the
// change (zero for remove and rename), so the guest can touch the file
// in the VM without changing them on the host.
type FileEvent struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Mtime int64  `json:"mtime,omitempty"` // Unix nanoseconds
	Atime int64  `json:"atime,omitempty"`
}

// WatchRequest is the set of VM paths the guest wants events for.
type WatchRequest struct {
	Watch []string `json:"watch"`
}

// maxEventLine bounds one line of the event stream.
const maxEventLine = 8 << 10

// ParseFileEvent decodes and checks one event line.
func ParseFileEvent(line []byte) (FileEvent, error) {
	var e FileEvent
	if len(line) > maxEventLine {
		return e, fmt.Errorf("file event: line of %d bytes", len(line))
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Errorf("file event: %w", err)
	}
	switch e.Op {
	case OpCreate, OpWrite, OpRemove, OpRename:
	default:
		return e, fmt.Errorf("file event: unknown op %q", e.Op)
	}
	if err := checkVMPath(e.Path); err != nil {
		return e, fmt.Errorf("file event: %w", err)
	}
	if e.Mtime < 0 || e.Atime < 0 {
		return e, errors.New("file event: negative time")
	}
	return e, nil
}

// ParseWatchRequest decodes and checks one watch line.
func ParseWatchRequest(line []byte) (WatchRequest, error) {
	var w WatchRequest
	if len(line) > 1<<20 {
		return w, fmt.Errorf("watch request: line of %d bytes", len(line))
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return w, fmt.Errorf("watch request: %w", err)
	}
	for _, p := range w.Watch {
		if err := checkVMPath(p); err != nil {
			return w, fmt.Errorf("watch request: %w", err)
		}
	}
	return w, nil
}

func checkVMPath(p string) error {
	if p == "" || p[0] != '/' || path.Clean(p) != p {
		return fmt.Errorf("%q is not a clean absolute path", p)
	}
	return nil
}

// Times returns the event's times (zero times when unset).
func (e FileEvent) Times() (atime, mtime time.Time) {
	if e.Atime != 0 {
		atime = time.Unix(0, e.Atime)
	}
	if e.Mtime != 0 {
		mtime = time.Unix(0, e.Mtime)
	}
	return atime, mtime
}

// HostPathOf is the host path of VM path p, the inverse of VMPath: the
// same path on macOS and Linux; on Windows, /run/host/c/Users/me is
// C:\Users\me. ok is false for a VM path that no host path maps to.
func HostPathOf(goos, p string) (string, bool) {
	if checkVMPath(p) != nil {
		return "", false
	}
	if goos != "windows" {
		return p, true
	}
	rest, found := strings.CutPrefix(p, WindowsRoot+"/")
	if !found {
		return "", false
	}
	if unc, ok := strings.CutPrefix(rest, "unc/"); ok {
		return `\\` + strings.ReplaceAll(unc, "/", `\`), true
	}
	drive, tail, _ := strings.Cut(rest, "/")
	if len(drive) != 1 || !isLetter(drive[0]) {
		return "", false
	}
	return strings.ToUpper(drive) + `:\` + strings.ReplaceAll(tail, "/", `\`), true
}
