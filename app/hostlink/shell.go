package hostlink

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// ShellRequest opens a session on the guest's shell port (1026): the
// terminal type, its size, and the command (a login shell when empty).
type ShellRequest struct {
	Term string   `json:"term,omitempty"`
	Cols int      `json:"cols,omitempty"`
	Rows int      `json:"rows,omitempty"`
	Cmd  []string `json:"cmd,omitempty"`
}

// WindowSize is a terminal size in characters.
type WindowSize struct{ Cols, Rows int }

// Shell frame types (docs/CHANNEL.md).
const (
	shellData   byte = 'd'
	shellResize byte = 'w'
	shellExit   byte = 'x'
)

// maxShellFrame bounds a frame's payload.
const maxShellFrame = 1 << 20

// ErrShellProtocol is returned when the guest breaks the shell protocol.
var ErrShellProtocol = errors.New("shell protocol")

// RunShell runs a session over conn (a connection to the shell port): it
// sends req, then stdin and the window sizes from resize (which may be
// nil), and copies the terminal's output to stdout until the guest reports
// the exit status, which it returns. It closes conn.
func RunShell(conn net.Conn, req ShellRequest, stdin io.Reader, stdout io.Writer, resize <-chan WindowSize) (int, error) {
	defer conn.Close()
	line, err := json.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("shell request: %w", err)
	}
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		buf := make([]byte, 5+len(p))
		buf[0] = typ
		binary.BigEndian.PutUint32(buf[1:5], uint32(len(p)))
		copy(buf[5:], p)
		_, err := conn.Write(buf)
		return err
	}
	wmu.Lock()
	_, err = conn.Write(append(line, '\n'))
	wmu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("shell request: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && send(shellData, buf[:n]) != nil {
					return
				}
				if err != nil {
					// The guest's terminal sees no end of input; the
					// session ends when its command does.
					return
				}
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case ws := <-resize:
					if ws.Cols <= 0 || ws.Rows <= 0 || ws.Cols > 0xffff || ws.Rows > 0xffff {
						continue
					}
					var b [4]byte
					binary.BigEndian.PutUint16(b[0:], uint16(ws.Cols))
					binary.BigEndian.PutUint16(b[2:], uint16(ws.Rows))
					if send(shellResize, b[:]) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	br := bufio.NewReader(conn)
	for {
		typ, p, err := readShellFrame(br)
		if err != nil {
			return 0, fmt.Errorf("shell session: %w", err)
		}
		switch typ {
		case shellData:
			if _, err := stdout.Write(p); err != nil {
				return 0, fmt.Errorf("shell output: %w", err)
			}
		case shellExit:
			return int(int32(binary.BigEndian.Uint32(p))), nil
		}
	}
}

// readShellFrame reads one guest -> host frame.
func readShellFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, fmt.Errorf("%w: the guest closed the session without an exit status", ErrShellProtocol)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	switch {
	case n > maxShellFrame:
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrShellProtocol, n)
	case hdr[0] == shellExit && n != 4:
		return 0, nil, fmt.Errorf("%w: exit frame of %d bytes", ErrShellProtocol, n)
	case hdr[0] != shellData && hdr[0] != shellExit:
		return 0, nil, fmt.Errorf("%w: frame type %q", ErrShellProtocol, hdr[0])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated frame: %v", ErrShellProtocol, err)
	}
	return hdr[0], p, nil
}
