package link

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ShellRequest is the JSON line a host writes first on the shell port
// (1026): the terminal type, its size, and the command (a login shell when
// empty).
type ShellRequest struct {
	Term string   `json:"term,omitempty"`
	Cols int      `json:"cols,omitempty"`
	Rows int      `json:"rows,omitempty"`
	Cmd  []string `json:"cmd,omitempty"`
}

// Shell frame types (docs/CHANNEL.md): after the request line both sides
// write frames of one type byte, a 4-byte big-endian length and the payload.
const (
	ShellData   byte = 'd' // terminal bytes, either way
	ShellResize byte = 'w' // host -> guest: cols, rows as two big-endian uint16
	ShellExit   byte = 'x' // guest -> host: exit status as a big-endian int32; last frame
)

// maxShellFrame bounds a frame's payload.
const maxShellFrame = 1 << 20

// maxShellRequest bounds the request line.
const maxShellRequest = 64 << 10

// ErrBadShellFrame is returned for a malformed frame or request.
var ErrBadShellFrame = errors.New("bad shell frame")

// ReadShellRequest reads and checks the request line.
func ReadShellRequest(r *bufio.Reader) (ShellRequest, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxShellRequest {
			return ShellRequest{}, fmt.Errorf("%w: request line longer than %d bytes", ErrBadShellFrame, maxShellRequest)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return ShellRequest{}, fmt.Errorf("read shell request: %w", err)
		}
		break
	}
	var req ShellRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return ShellRequest{}, fmt.Errorf("%w: request: %v", ErrBadShellFrame, err)
	}
	if req.Cols < 0 || req.Rows < 0 || req.Cols > 0xffff || req.Rows > 0xffff {
		return ShellRequest{}, fmt.Errorf("%w: window %dx%d", ErrBadShellFrame, req.Cols, req.Rows)
	}
	if strings.ContainsAny(req.Term, "\x00\n=") {
		return ShellRequest{}, fmt.Errorf("%w: terminal type %q", ErrBadShellFrame, req.Term)
	}
	for _, a := range req.Cmd {
		if strings.ContainsRune(a, 0) {
			return ShellRequest{}, fmt.Errorf("%w: NUL in command", ErrBadShellFrame)
		}
	}
	return req, nil
}

// WriteShellFrame writes one frame.
func WriteShellFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxShellFrame {
		return fmt.Errorf("%w: %d bytes", ErrBadShellFrame, len(payload))
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadShellFrame reads one frame; io.EOF at a frame boundary is returned
// as is.
func ReadShellFrame(r io.Reader) (typ byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("%w: truncated header", ErrBadShellFrame)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxShellFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBadShellFrame, n)
	}
	switch hdr[0] {
	case ShellData:
	case ShellResize:
		if n != 4 {
			return 0, nil, fmt.Errorf("%w: resize of %d bytes", ErrBadShellFrame, n)
		}
	case ShellExit:
		if n != 4 {
			return 0, nil, fmt.Errorf("%w: exit of %d bytes", ErrBadShellFrame, n)
		}
	default:
		return 0, nil, fmt.Errorf("%w: type %q", ErrBadShellFrame, hdr[0])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated payload: %v", ErrBadShellFrame, err)
	}
	return hdr[0], payload, nil
}
