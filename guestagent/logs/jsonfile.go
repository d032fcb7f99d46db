package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	units "github.com/docker/go-units"
)

// Entry is one line of a json-file log, as dockerd writes it.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Options configure rotation. Zero MaxSize disables rotation.
type Options struct {
	MaxSize  int64 // bytes per file before rotating; 0 = unlimited
	MaxFiles int   // files kept including the current one; <1 means 1
}

// ParseOptions reads the log-opts this driver understands ("max-size",
// "max-file") and refuses any other key, as dockerd does for json-file.
func ParseOptions(opts map[string]string) (Options, error) {
	var o Options
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil {
				return o, fmt.Errorf("invalid max-size %q: %w", v, err)
			}
			if n < 0 {
				return o, fmt.Errorf("invalid max-size %q: negative", v)
			}
			o.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("invalid max-file %q: %w", v, err)
			}
			if n < 1 {
				return o, errors.New("max-file cannot be less than 1")
			}
			o.MaxFiles = n
		case "mode", "max-buffer-size", "labels", "labels-regex", "env", "env-regex", "tag", "compress":
			// Accepted by dockerd's json-file driver; they change nothing here.
		default:
			return o, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	if o.MaxFiles > 1 && o.MaxSize == 0 {
		return o, errors.New("max-file cannot be set without max-size")
	}
	return o, nil
}

// File is the json-file log of one container. Writes are serialised; readers
// may follow it while it is written.
type File struct {
	path string
	opts Options

	mu      sync.Mutex
	f       *os.File
	size    int64
	changed chan struct{} // closed and replaced after each write/rotation
	closed  bool
	buf     bytes.Buffer
}

// Open opens (appending to) the log at path.
func Open(path string, opts Options) (*File, error) {
	if opts.MaxFiles < 1 {
		opts.MaxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log %s: %w", path, err)
	}
	return &File{path: path, opts: opts, f: f, size: st.Size(), changed: make(chan struct{})}, nil
}

// Path is the current log file.
func (l *File) Path() string { return l.path }

// Write appends one entry. line is the raw bytes (with its newline, if any).
func (l *File) Write(stream string, line []byte, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("write log %s: closed", l.path)
	}
	l.buf.Reset()
	enc := json.NewEncoder(&l.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Entry{Log: string(line), Stream: stream, Time: t.UTC()}); err != nil {
		return fmt.Errorf("encode log line: %w", err)
	}
	n := int64(l.buf.Len())
	if l.opts.MaxSize > 0 && l.size > 0 && l.size+n > l.opts.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	w, err := l.f.Write(l.buf.Bytes())
	l.size += int64(w)
	if err != nil {
		return fmt.Errorf("write log %s: %w", l.path, err)
	}
	l.notify()
	return nil
}

func (l *File) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// rotate shifts path.N-1 -> path.N ... path -> path.1 and opens a new path.
// With MaxFiles 1 the file is truncated.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", l.path, err)
	}
	if l.opts.MaxFiles > 1 {
		os.Remove(fmt.Sprintf("%s.%d", l.path, l.opts.MaxFiles-1))
		for i := l.opts.MaxFiles - 2; i >= 1; i-- {
			err := os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log %s: %w", l.path, err)
			}
		}
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("rotate log %s: %w", l.path, err)
		}
	} else if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("reopen log %s: %w", l.path, err)
	}
	l.f = f
	l.size = 0
	l.notify()
	return nil
}

// Close stops writing; followers finish reading and end.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.notify()
	return l.f.Close()
}

// state returns what a follower needs: whether the writer is closed, and a
// channel closed on the next change.
func (l *File) state() (closed bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed, l.changed
}

// ReadOptions select entries.
type ReadOptions struct {
	Tail   int // last N entries; negative = all
	Since  time.Time
	Until  time.Time
	Follow bool
}

// files lists the log's files oldest first (path.N ... path.1, path).
func files(path string) []string {
	var out []string
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		out = append([]string{p}, out...)
	}
	return append(out, path)
}

// Read sends the selected entries of the log at path to fn, oldest first,
// until fn returns false or ctx-like done is closed. With Follow and a live
// writer w, it keeps sending new entries until w is closed or done closes.
// w may be nil (no live writer: Follow ends at the end of the files).
func Read(path string, w *File, opts ReadOptions, done <-chan struct{}, fn func(Entry) bool) error {
	// Open every file at once (under the writer's lock, so that no
	// rotation moves them meanwhile), then read the history, bounded by
	// Tail when set.
	if w != nil {
		w.mu.Lock()
	}
	var fds []*os.File
	var openErr error
	for _, name := range files(path) {
		f, err := os.Open(name)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				openErr = fmt.Errorf("open log %s: %w", name, err)
			}
			continue
		}
		fds = append(fds, f)
	}
	if w != nil {
		w.mu.Unlock()
	}
	closeAll := func(from int) {
		for _, f := range fds[from:] {
			f.Close()
		}
	}
	if openErr != nil {
		closeAll(0)
		return openErr
	}
	var tail []Entry
	keep := func(e Entry) bool {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return false
		}
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			return false
		}
		return true
	}
	var cur *os.File
	var curReader *bufio.Reader
	var pending []byte // an unterminated last line, finished by the writer
	for i, f := range fds {
		r := bufio.NewReader(f)
		var partial *[]byte
		if i == len(fds)-1 && opts.Follow && w != nil {
			partial = &pending
		}
		for {
			e, err := next(r, partial)
			if err == io.EOF {
				break
			}
			if err != nil {
				closeAll(i)
				return fmt.Errorf("read log %s: %w", f.Name(), err)
			}
			if !keep(e) {
				continue
			}
			if opts.Tail >= 0 {
				if opts.Tail == 0 {
					continue
				}
				tail = append(tail, e)
				if len(tail) > opts.Tail {
					tail = tail[1:]
				}
				continue
			}
			if !fn(e) {
				closeAll(i)
				return nil
			}
		}
		if i == len(fds)-1 {
			cur, curReader = f, r
		} else {
			f.Close()
		}
	}
	for _, e := range tail {
		if !fn(e) {
			if cur != nil {
				cur.Close()
			}
			return nil
		}
	}
	if !opts.Follow || w == nil {
		if cur != nil {
			cur.Close()
		}
		return nil
	}
	if cur != nil && cur.Name() != path {
		// The current file did not exist when we looked; start from it.
		cur.Close()
		cur, curReader = nil, nil
		pending = nil
	}
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	// drain reads the held file to its end; stop says fn asked to stop or
	// Until was passed.
	drain := func() (stop bool, err error) {
		for curReader != nil {
			line, err := curReader.ReadBytes('\n')
			pending = append(pending, line...)
			if err == io.EOF {
				return false, nil
			}
			if err != nil {
				return true, fmt.Errorf("read log %s: %w", path, err)
			}
			var e Entry
			if json.Unmarshal(pending, &e) == nil {
				if !opts.Until.IsZero() && e.Time.After(opts.Until) {
					return true, nil
				}
				if keep(e) && !fn(e) {
					return true, nil
				}
			}
			pending = pending[:0]
		}
		return false, nil
	}
	for {
		// Take the change channel before reading, so that a write after
		// the read wakes us.
		closed, changed := w.state()
		if cur == nil {
			f, err := os.Open(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("open log %s: %w", path, err)
			}
			if f != nil {
				cur, curReader = f, bufio.NewReader(f)
			}
		}
		if stop, err := drain(); stop || err != nil {
			return err
		}
		// The file we hold is complete once a newer one exists: read what
		// was written to it since the drain, then move on to the next one
		// in rotation order (we keep the descriptor, so a rename does not
		// lose our place).
		if cur != nil {
			// Under the writer's lock no rotation renames files while
			// we look for ours.
			w.mu.Lock()
			next := nextFile(path, cur)
			w.mu.Unlock()
			if next != nil {
				if stop, err := drain(); stop || err != nil {
					next.Close()
					return err
				}
				cur.Close()
				cur, curReader = next, bufio.NewReader(next)
				pending = pending[:0]
				continue
			}
		}
		if closed {
			return nil
		}
		select {
		case <-changed:
		case <-done:
			return nil
		}
	}
}

// nextFile opens the file written after held: the one after it in
// path.N ... path.1, path, or the oldest one left when held was rotated
// away. It returns nil when held is still the current file.
func nextFile(path string, held *os.File) *os.File {
	hs, err := held.Stat()
	if err != nil {
		return nil
	}
	names := files(path)
	idx := -1
	for i, n := range names {
		if st, err := os.Stat(n); err == nil && os.SameFile(st, hs) {
			idx = i
		}
	}
	if idx == len(names)-1 {
		return nil
	}
	for _, n := range names[idx+1:] {
		if f, err := os.Open(n); err == nil {
			return f
		}
	}
	return nil
}

// next decodes one entry; blank or corrupt lines are skipped. With partial
// set, an unterminated last line (being written) is left in *partial
// instead of being decoded.
func next(r *bufio.Reader, partial *[]byte) (Entry, error) {
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return Entry{}, err
		}
		if err != nil && err != io.EOF {
			return Entry{}, err
		}
		if err == io.EOF && partial != nil {
			*partial = append(*partial, line...)
			return Entry{}, io.EOF
		}
		var e Entry
		if uerr := json.Unmarshal(line, &e); uerr == nil {
			return e, nil
		}
		if err == io.EOF {
			return Entry{}, io.EOF
		}
	}
}

// Remove deletes the log at path and its rotated files.
func Remove(path string) error {
	for _, name := range files(path) {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove log %s: %w", filepath.Base(name), err)
		}
	}
	return nil
}

// ParseEntries decodes a json-file log stream, skipping corrupt lines; it is
// what the reader does to each file.
func ParseEntries(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	var out []Entry
	for {
		e, err := next(br, nil)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}
