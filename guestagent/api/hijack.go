package api

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types"
)

// Stream identifiers of the multiplexed (stdcopy) framing.
const (
	streamStdout byte = 1
	streamStderr byte = 2
)

// hijackedConn is a connection taken over from net/http for attach or
// exec. It owns the raw stream after the response head.
type hijackedConn struct {
	conn    net.Conn
	stdin   *hijackedStdin
	writeMu sync.Mutex // one frame at a time
	// multiplexed tells whether output is framed with stdcopy headers.
	multiplexed bool
	release     func()
}

// hijack takes the connection of w, writes the response head (101
// UPGRADED when the client asked for an upgrade, else a plain 200 with no
// length: the body runs until the connection closes) and returns it.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (*hijackedConn, error) {
	endSession := s.beginSession()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		endSession()
		return nil, fmt.Errorf("hijack connection for %s: %w", r.URL.Path, err)
	}
	contentType := types.MediaTypeRawStream
	if multiplexed && compareVersions(requestVersion(r.Context()), "1.42") >= 0 {
		contentType = types.MediaTypeMultiplexedStream
	}
	_ = conn.SetDeadline(time.Time{})
	var head []byte
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		head = fmt.Appendf(head, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", contentType)
	} else {
		head = fmt.Appendf(head, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", contentType)
	}
	hdr := w.Header().Clone()
	hdr.Del("Content-Type")
	hdr.Del("Content-Length")
	var hb bytes.Buffer
	_ = hdr.Write(&hb)
	head = append(head, hb.Bytes()...)
	head = append(head, "\r\n"...)
	untrack := s.trackConn(conn)
	hc := &hijackedConn{conn: conn, release: func() { untrack(); endSession() }}
	if _, err := conn.Write(head); err != nil {
		hc.close()
		return nil, fmt.Errorf("write response head for %s: %w", r.URL.Path, err)
	}
	// Bytes the client sent after the request head (stdin typed early)
	// may already sit in the server's read buffer: hand them on first.
	var in io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)
	}
	hc.stdin = &hijackedStdin{r: in, conn: conn}
	return hc, nil
}

// streams returns the writers for stdout and stderr: framed with stdcopy
// headers when multiplexed, raw otherwise. Each Write goes straight to the
// connection (no buffering), one frame per Write.
func (hc *hijackedConn) streams(multiplexed bool) (stdout, stderr io.Writer) {
	if !multiplexed {
		raw := &connWriter{hc: hc}
		return raw, raw
	}
	cw := &connWriter{hc: hc}
	return &frameWriter{w: cw, stream: streamStdout}, &frameWriter{w: cw, stream: streamStderr}
}

// lingerTimeout bounds how long a finished session waits for the client
// to close its end.
const lingerTimeout = 10 * time.Second

// close ends the session: the client sees EOF on its read side
// (CloseWrite); then what the client still sends is read and dropped
// until it closes too, and only then is the connection closed. Closing a
// socket with unread input makes the kernel report a reset to the peer
// (ECONNRESET on unix sockets, RST on TCP), which would turn the client's
// clean EOF into an error and can cost it the tail of the output.
func (hc *hijackedConn) close() {
	if hc.stdin != nil {
		// From now on stdin reads EOF, and the backend's Close of it must
		// not cut the drain below short.
		hc.stdin.once.Do(func() { hc.stdin.closed.Store(true) })
	}
	if cw, ok := hc.conn.(interface{ CloseWrite() error }); ok {
		hc.writeMu.Lock()
		_ = cw.CloseWrite()
		hc.writeMu.Unlock()
		_ = hc.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, hc.conn)
	}
	_ = hc.conn.Close()
	hc.release()
}

// connWriter writes straight to the connection, one Write at a time.
type connWriter struct{ hc *hijackedConn }

func (w *connWriter) Write(p []byte) (int, error) {
	w.hc.writeMu.Lock()
	defer w.hc.writeMu.Unlock()
	return w.hc.conn.Write(p)
}

// maxFrame keeps frames within what every stdcopy reader accepts at once.
const maxFrame = 32 * 1024

func streamName(s byte) string {
	if s == streamStderr {
		return "stderr"
	}
	return "stdout"
}

// hijackedStdin is the client's input. It reads EOF when the client
// half-closes (CloseWrite) or closes. Close makes pending and later reads
// return EOF without closing the connection, whose write side may still
// carry output.
type hijackedStdin struct {
	r      io.Reader
	conn   net.Conn
	closed atomic.Bool
	once   sync.Once
}

func (s *hijackedStdin) Read(p []byte) (int, error) {
	if s.closed.Load() {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err != nil && s.closed.Load() {
		return n, io.EOF
	}
	return n, err
}

func (s *hijackedStdin) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		if cr, ok := s.conn.(interface{ CloseRead() error }); ok {
			_ = cr.CloseRead()
		}
		// Wake a reader blocked on a connection without CloseRead.
		_ = s.conn.SetReadDeadline(time.Now())
	})
	return nil
}

// streamSession hands a backend the StreamsFunc of one request and
// remembers the hijacked connection, if the backend asked for it.
type streamSession struct {
	srv *Server
	w   http.ResponseWriter
	r   *http.Request

	mu sync.Mutex
	hc *hijackedConn
}

// get is the StreamsFunc: its first call hijacks the connection.
func (ss *streamSession) get(multiplexed bool) (io.ReadCloser, io.Writer, io.Writer, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.hc != nil {
		return nil, nil, nil, fmt.Errorf("streams of %s requested twice", ss.r.URL.Path)
	}
	hc, err := ss.srv.hijack(ss.w, ss.r, multiplexed)
	if err != nil {
		return nil, nil, nil, err
	}
	hc.multiplexed = multiplexed
	ss.hc = hc
	stdout, stderr := hc.streams(multiplexed)
	return hc.stdin, stdout, stderr, nil
}

// conn returns the hijacked connection, or nil if the backend never asked.
func (ss *streamSession) conn() *hijackedConn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.hc
}
