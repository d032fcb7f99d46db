package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// dockerClient speaks the Docker Engine API on the forwarded socket.
type dockerClient struct {
	sock string
	http *http.Client
}

func newDockerClient(sock string) *dockerClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &dockerClient{sock: sock, http: &http.Client{Transport: tr}}
}

// DockerResponse is an engine answer: its status and body.
type DockerResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// maxDockerBody bounds one answer of Docker (an inspect, a list).
const maxDockerBody = 64 << 20

// checkPath keeps requests to the engine's API paths.
func checkPath(method, path string) error {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead:
	default:
		return fmt.Errorf("method %q is not one the Docker API uses", method)
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return fmt.Errorf("docker API path %q does not start with one /", path)
	}
	return nil
}

func (c *dockerClient) request(ctx context.Context, method, path, body string) (*http.Response, error) {
	if err := checkPath(method, path); err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the engine does not answer on %s (is Berth running?): %w", c.sock, err)
	}
	return resp, nil
}

// Docker makes one Docker Engine API call (method, path with its query,
// a JSON body or "") and returns the engine's status and body as they
// are, errors included (the frontend shows the engine's message).
func (a *App) Docker(method, path, body string) (DockerResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := a.docker.request(ctx, method, path, body)
	if err != nil {
		return DockerResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerBody))
	if err != nil {
		return DockerResponse{}, fmt.Errorf("docker %s %s: read answer: %w", method, path, err)
	}
	return DockerResponse{Status: resp.StatusCode, Body: string(b)}, nil
}

// StreamChunk is one "stream:<id>" event: a batch of log output from one
// stream ("stdout", "stderr"), or one line of a JSON-lines answer.
type StreamChunk struct {
	Stream string `json:"stream,omitempty"`
	Data   string `json:"data"`
}

// StreamEnd is the "stream-end:<id>" event.
type StreamEnd struct {
	Error string `json:"error,omitempty"`
}

// Stream kinds.
const (
	kindLogs  = "logs"  // a log stream: multiplexed frames, or raw for a TTY
	kindLines = "lines" // one JSON document per line (pull, stats, events)
)

// StreamOpen makes a streaming Docker API call and returns its id; the
// answer comes as "stream:<id>" events and ends with "stream-end:<id>".
// An answer with an error status ends at once with the engine's message.
func (a *App) StreamOpen(method, path, body, kind string) (string, error) {
	if kind != kindLogs && kind != kindLines {
		return "", fmt.Errorf("stream kind %q (logs or lines)", kind)
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := a.docker.request(ctx, method, path, body)
	if err != nil {
		cancel()
		return "", err
	}
	if resp.StatusCode >= 400 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return "", fmt.Errorf("%s", engineMessage(b))
	}
	id := a.nextID.next("s")
	a.streams.Store(id, context.CancelFunc(cancel))
	go func() {
		defer resp.Body.Close()
		defer cancel()
		emit := func(c StreamChunk) { a.emit("stream:"+id, c) }
		var err error
		if kind == kindLines {
			err = readLines(resp.Body, emit)
		} else {
			mux := resp.Header.Get("Content-Type") == "application/vnd.docker.multiplexed-stream"
			err = readLogs(resp.Body, mux, emit)
		}
		end := StreamEnd{}
		if err != nil && ctx.Err() == nil {
			end.Error = err.Error()
		}
		a.streams.Delete(id)
		a.emit("stream-end:"+id, end)
	}()
	return id, nil
}

// StreamClose ends a stream; closing one that ended is not an error.
func (a *App) StreamClose(id string) {
	if c, ok := a.streams.LoadAndDelete(id); ok {
		c.(context.CancelFunc)()
	}
}

// engineMessage is the message of an engine error body ({"message": ...}).
func engineMessage(b []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(b))
}

// maxLine bounds one line of a JSON-lines answer.
const maxLine = 4 << 20

func readLines(r io.Reader, emit func(StreamChunk)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			emit(StreamChunk{Data: string(line)})
		}
	}
	return sc.Err()
}

// flushEvery and flushBytes batch log output into events: a busy log
// makes a few events a second of many lines, not one per write.
const (
	flushEvery = 50 * time.Millisecond
	flushBytes = 64 << 10
)

// batcher gathers output per stream and emits it in batches, keeping an
// incomplete UTF-8 sequence for the next batch.
type batcher struct {
	emit  func(StreamChunk)
	buf   map[string][]byte
	order []string
	last  time.Time
}

func newBatcher(emit func(StreamChunk)) *batcher {
	return &batcher{emit: emit, buf: map[string][]byte{}, last: time.Now()}
}

func (b *batcher) add(stream string, p []byte) {
	if _, ok := b.buf[stream]; !ok {
		b.order = append(b.order, stream)
	}
	b.buf[stream] = append(b.buf[stream], p...)
	if len(b.buf[stream]) >= flushBytes || time.Since(b.last) >= flushEvery {
		b.flush(false)
	}
}

// flush emits what is gathered; all emits the incomplete tails too.
func (b *batcher) flush(all bool) {
	for _, s := range b.order {
		data := b.buf[s]
		n := len(data)
		if !all {
			n = completeUTF8(data)
		}
		if n > 0 {
			b.emit(StreamChunk{Stream: s, Data: strings.ToValidUTF8(string(data[:n]), "\uFFFD")})
		}
		b.buf[s] = append(data[:0], data[n:]...)
	}
	b.last = time.Now()
}

// completeUTF8 is the length of p without a UTF-8 sequence cut at its end.
func completeUTF8(p []byte) int {
	for i := 1; i <= utf8.UTFMax && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < utf8.RuneSelf {
			return len(p) // ASCII: nothing cut
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(p[len(p)-i:]) {
				return len(p)
			}
			return len(p) - i
		}
	}
	return len(p)
}

// readLogs reads a log answer: multiplexed frames (8-byte header: stream,
// 3 zero bytes, big-endian length) or, for a TTY container, raw output.
func readLogs(r io.Reader, mux bool, emit func(StreamChunk)) error {
	b := newBatcher(emit)
	defer b.flush(true)
	// A quiet follow still sends what it has: a ticker flushes.
	type chunk struct {
		stream string
		data   []byte
		err    error
	}
	ch := make(chan chunk, 16)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, 64<<10)
		var hdr [8]byte
		for {
			stream := "stdout"
			var buf []byte
			if mux {
				if _, err := io.ReadFull(br, hdr[:]); err != nil {
					ch <- chunk{err: err}
					return
				}
				if hdr[0] == 2 {
					stream = "stderr"
				}
				buf = make([]byte, binary.BigEndian.Uint32(hdr[4:]))
				if _, err := io.ReadFull(br, buf); err != nil {
					ch <- chunk{err: err}
					return
				}
			} else {
				buf = make([]byte, 32<<10)
				n, err := br.Read(buf)
				if err != nil {
					ch <- chunk{err: err}
					return
				}
				buf = buf[:n]
			}
			ch <- chunk{stream: stream, data: buf}
		}
	}()
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return nil
			}
			if c.err != nil {
				if errors.Is(c.err, io.EOF) || errors.Is(c.err, context.Canceled) {
					return nil
				}
				return c.err
			}
			b.add(c.stream, c.data)
		case <-t.C:
			b.flush(false)
		}
	}
}
