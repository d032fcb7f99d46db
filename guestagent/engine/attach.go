//go:build linux

package engine

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/moby/moby/api/types/events"
)

// defaultDetachKeys is ctrl-p ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// parseDetachKeys parses docker's --detach-keys: comma-separated single
// characters or ctrl-<c> with <c> one of a-z, @, [, \, ], ^, _.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return defaultDetachKeys, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ctrl-") || len(lk) != 6 {
			return nil, invalid("Invalid detach keys (%s) provided", s)
		}
		c := lk[5]
		switch {
		case c >= 'a' && c <= 'z':
			out = append(out, c-'a'+1)
		case c == '@':
			out = append(out, 0)
		case c == '[':
			out = append(out, 27)
		case c == '\\':
			out = append(out, 28)
		case c == ']':
			out = append(out, 29)
		case c == '^':
			out = append(out, 30)
		case c == '_':
			out = append(out, 31)
		default:
			return nil, invalid("Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}

// detachScanner passes input through until the detach sequence is typed.
// A partial match is held back and released if the sequence breaks.
type detachScanner struct {
	keys    []byte
	matched int
}

// scan returns the bytes to forward and whether the sequence completed.
func (d *detachScanner) scan(p []byte) (out []byte, detach bool) {
	if len(d.keys) == 0 {
		return p, false
	}
	for _, b := range p {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				return out, true
			}
			continue
		}
		if d.matched > 0 {
			out = append(out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
		}
		out = append(out, b)
	}
	return out, false
}

// ContainerAttach implements api.ContainerBackend.
func (e *Engine) ContainerAttach(ctx context.Context, name string, opts api.AttachOptions) error {
	c, err := e.lookup(name)
	if err != nil {
		return err
	}
	keys, err := parseDetachKeys(opts.DetachKeys)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.m.State.Paused {
		c.mu.Unlock()
		return conflict("You cannot attach to a paused container, unpause it first")
	}
	if c.m.State.RemovalInProgress || c.m.State.Dead {
		c.mu.Unlock()
		return conflict("You cannot attach to a container that is being removed")
	}
	tty := c.m.Config.Tty
	openStdin, stdinOnce := c.m.Config.OpenStdin, c.m.Config.StdinOnce
	logPath := c.m.LogPath
	c.mu.Unlock()

	// Subscribe before the client learns that the attach succeeded: docker
	// run starts the container right after, and no output may be lost.
	var sub *subscriber
	var lazyOut, lazyErr *lazyWriter
	if opts.Stream {
		sub = &subscriber{done: make(chan struct{})}
		if opts.UseStdout {
			lazyOut = &lazyWriter{}
			sub.stdout = lazyOut
		}
		if opts.UseStderr {
			lazyErr = &lazyWriter{}
			sub.stderr = lazyErr
		}
		c.streams.add(sub)
		defer c.streams.remove(sub)
	}
	stdin, stdout, stderr, err := opts.GetStreams(!tty)
	if err != nil {
		return err
	}
	defer stdin.Close()
	if !opts.UseStdout {
		stdout = nil
	}
	if !opts.UseStderr {
		stderr = nil
	}
	if opts.Logs && logPath != "" {
		_ = logs.Read(logPath, nil, logs.ReadOptions{Tail: -1}, ctx.Done(), func(en logs.Entry) bool {
			w := stdout
			if en.Stream == "stderr" {
				w = stderr
			}
			if w != nil {
				if _, err := io.WriteString(w, en.Log); err != nil {
					return false
				}
			}
			return true
		})
	}
	if !opts.Stream {
		return nil
	}
	if lazyOut != nil {
		lazyOut.set(stdout)
	}
	if lazyErr != nil {
		lazyErr.set(stderr)
	}
	e.emit(c, events.ActionAttach, nil)

	detached := make(chan struct{})
	if opts.UseStdin && openStdin {
		if !tty {
			// As dockerd: detach keys apply to terminals only; raw input
			// passes untouched.
			keys = nil
		}
		go e.pumpStdin(ctx, c, stdin, keys, stdinOnce && !tty, detached)
	}
	select {
	case <-sub.done:
	case <-detached:
	case <-ctx.Done():
	}
	return nil
}

// pumpStdin copies the client's input into the container's stdin, waiting
// for the container to start when it has not yet. At the end of the input
// it closes the container's stdin when closeStdin is set.
func (e *Engine) pumpStdin(ctx context.Context, c *ctr, in io.Reader, keys []byte, closeStdin bool, detached chan struct{}) {
	scanner := &detachScanner{keys: keys}
	buf := make([]byte, 32*1024)
	current := func() *run {
		for {
			c.mu.Lock()
			r, running, started := c.run, c.h != nil, c.runStarted
			c.mu.Unlock()
			if running && r != nil {
				return r
			}
			select {
			case <-started:
			case <-ctx.Done():
				return nil
			}
		}
	}
	for {
		n, err := in.Read(buf)
		if n > 0 {
			out, detach := scanner.scan(buf[:n])
			if len(out) > 0 {
				if r := current(); r != nil {
					_ = r.writeStdin(out)
				}
			}
			if detach {
				close(detached)
				return
			}
		}
		if err != nil {
			// The session goes on streaming output until the container
			// ends, as with dockerd; with StdinOnce the container's stdin
			// is closed too.
			if closeStdin {
				if r := current(); r != nil {
					r.closeStdin()
				}
			}
			return
		}
	}
}

// ContainerLogs implements api.ContainerBackend.
func (e *Engine) ContainerLogs(ctx context.Context, name string, opts api.LogsOptions) (<-chan api.LogMessage, bool, error) {
	c, err := e.lookup(name)
	if err != nil {
		return nil, false, err
	}
	if !opts.ShowStdout && !opts.ShowStderr {
		return nil, false, invalid("You must choose at least one stream")
	}
	c.mu.Lock()
	tty := c.m.Config.Tty
	path := c.m.LogPath
	var live = c.log
	if !c.m.State.Running {
		live = nil
	}
	c.mu.Unlock()
	if path == "" {
		return nil, false, invalid("configured logging driver does not support reading")
	}
	tail := -1
	if opts.Tail != "" && opts.Tail != "all" {
		n, err := strconv.Atoi(opts.Tail)
		if err == nil && n >= 0 {
			tail = n
		}
	}
	ro := logs.ReadOptions{Tail: tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow}
	out := make(chan api.LogMessage, 64)
	go func() {
		defer close(out)
		err := logs.Read(path, live, ro, ctx.Done(), func(en logs.Entry) bool {
			if en.Stream == "stdout" && !opts.ShowStdout || en.Stream == "stderr" && !opts.ShowStderr {
				return true
			}
			select {
			case out <- api.LogMessage{Stream: en.Stream, Line: []byte(en.Log), Timestamp: en.Time}:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil {
			select {
			case out <- api.LogMessage{Err: fmt.Errorf("read logs of %s: %w", c.m.ID, err)}:
			case <-ctx.Done():
			}
		}
	}()
	return out, tty, nil
}

// lazyWriter buffers writes until its destination is known, then flushes
// and forwards.
type lazyWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		l.buf = append(l.buf, p...)
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *lazyWriter) set(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, _ = w.Write(l.buf)
		l.buf = nil
	}
	l.w = w
}
