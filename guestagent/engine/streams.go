//go:build linux

package engine

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/berthdesktop/berth/guestagent/runtime"
)

// broadcaster fans a container's output out to attached clients.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// subscriber is one attach session's view of the output.
type subscriber struct {
	stdout io.Writer // nil: not wanted
	stderr io.Writer
	done   chan struct{} // closed when the run it watches has ended
	once   sync.Once
}

func (s *subscriber) end() { s.once.Do(func() { close(s.done) }) }

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[*subscriber]struct{}{}}
}

func (b *broadcaster) add(s *subscriber) {
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
}

func (b *broadcaster) remove(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// write sends p to every subscriber of stream; a client that fails is
// dropped and its session ended.
func (b *broadcaster) write(stream string, p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		w := s.stdout
		if stream == "stderr" {
			w = s.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			delete(b.subs, s)
			s.end()
		}
	}
}

// endAll ends every session: the run they watched is over.
func (b *broadcaster) endAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.end()
		delete(b.subs, s)
	}
}

// run is one execution of a container's (or exec's) process: its streams.
type run struct {
	tty        bool
	console    *os.File
	stdin      io.WriteCloser // nil without OpenStdin
	stdinOnce  sync.Once
	outputDone chan struct{} // closed when all output was copied
	exited     chan struct{} // closed when the exit has been recorded
}

func newRun(pio *runtime.ProcessIO, tty bool) *run {
	r := &run{tty: tty, outputDone: make(chan struct{}), exited: make(chan struct{})}
	if pio == nil {
		close(r.outputDone)
		return r
	}
	if tty {
		r.console = pio.Console
		if pio.Console != nil {
			r.stdin = pio.Console
		}
	} else {
		r.stdin = pio.Stdin
	}
	return r
}

// writeStdin forwards client input to the process.
func (r *run) writeStdin(p []byte) error {
	if r.stdin == nil {
		return errors.New("stdin not open")
	}
	_, err := r.stdin.Write(p)
	return err
}

// closeStdin closes the process's stdin (StdinOnce). With a terminal the
// console also carries output, so it stays open.
func (r *run) closeStdin() {
	if r.tty || r.stdin == nil {
		return
	}
	r.stdinOnce.Do(func() { r.stdin.Close() })
}

// pump copies the process's output into the log (split into lines) and to
// the broadcaster (as it comes), and closes r.outputDone at the end.
func (r *run) pump(pio *runtime.ProcessIO, lf *logs.File, b *broadcaster) {
	if pio == nil {
		return
	}
	var wg sync.WaitGroup
	copyStream := func(rd io.Reader, stream string) {
		defer wg.Done()
		lw := &lineWriter{log: lf, stream: stream}
		buf := make([]byte, 32*1024)
		for {
			n, err := rd.Read(buf)
			if n > 0 {
				b.write(stream, buf[:n])
				lw.write(buf[:n])
			}
			if err != nil {
				break
			}
		}
		lw.flush()
	}
	if r.tty {
		if pio.Console != nil {
			wg.Add(1)
			go copyStream(pio.Console, "stdout")
		}
	} else {
		if pio.Stdout != nil {
			wg.Add(1)
			go copyStream(pio.Stdout, "stdout")
		}
		if pio.Stderr != nil {
			wg.Add(1)
			go copyStream(pio.Stderr, "stderr")
		}
	}
	go func() {
		wg.Wait()
		close(r.outputDone)
	}()
}

// maxLogLine is where a line without newline is cut into a partial entry,
// as dockerd does at 16 KiB.
const maxLogLine = 16 * 1024

// lineWriter cuts output into log entries at newlines.
type lineWriter struct {
	log     *logs.File
	stream  string
	pending []byte
}

func (w *lineWriter) write(p []byte) {
	if w.log == nil {
		return
	}
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			if len(w.pending) >= maxLogLine {
				w.emit(w.pending)
				w.pending = w.pending[:0]
			}
			return
		}
		if len(w.pending) > 0 {
			w.pending = append(w.pending, p[:i+1]...)
			w.emit(w.pending)
			w.pending = w.pending[:0]
		} else {
			w.emit(p[:i+1])
		}
		p = p[i+1:]
	}
}

func (w *lineWriter) flush() {
	if w.log != nil && len(w.pending) > 0 {
		w.emit(w.pending)
		w.pending = nil
	}
}

func (w *lineWriter) emit(line []byte) {
	_ = w.log.Write(w.stream, line, time.Now())
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}
