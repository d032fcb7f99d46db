package hostlink

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// fakeShellGuest plays the guest's shell service: it checks the request,
// answers each resize with "size COLSxROWS", echoes input, and exits with 5
// on "exit".
func fakeShellGuest(t *testing.T, c net.Conn, want ShellRequest) {
	defer c.Close()
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	if err != nil {
		t.Error(err)
		return
	}
	var req ShellRequest
	if err := json.Unmarshal(line, &req); err != nil || fmt.Sprint(req) != fmt.Sprint(want) {
		t.Errorf("request %s (%v), want %+v", line, err, want)
		return
	}
	frame := func(typ byte, p []byte) {
		var h [5]byte
		h[0] = typ
		binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
		c.Write(append(h[:], p...))
	}
	for {
		var h [5]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		io.ReadFull(br, p)
		switch h[0] {
		case 'w':
			frame('d', fmt.Appendf(nil, "size %dx%d\n", binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])))
		case 'd':
			frame('d', p)
			if strings.Contains(string(p), "exit") {
				frame('x', []byte{0, 0, 0, 5})
				return
			}
		}
	}
}

func TestRunShell(t *testing.T) {
	host, guest := net.Pipe()
	req := ShellRequest{Term: "xterm", Cols: 80, Rows: 24, Cmd: []string{"/bin/sh"}}
	go fakeShellGuest(t, guest, req)
	resize := make(chan WindowSize, 1)
	resize <- WindowSize{Cols: 132, Rows: 43}
	stdinR, stdinW := io.Pipe()
	var out bytes.Buffer
	outW := &notifyWriter{w: &out, seen: "size 132x43", ch: make(chan struct{})}
	go func() {
		<-outW.ch // input after the resize came back
		io.WriteString(stdinW, "echo hi\nexit\n")
	}()
	code, err := RunShell(host, req, stdinR, outW, resize)
	if err != nil || code != 5 {
		t.Fatalf("RunShell: %d, %v", code, err)
	}
	if got := out.String(); got != "size 132x43\necho hi\nexit\n" {
		t.Fatalf("output %q", got)
	}
}

// notifyWriter closes ch once what it wrote contains seen.
type notifyWriter struct {
	w    *bytes.Buffer
	seen string
	ch   chan struct{}
	done bool
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	n.w.Write(p)
	if !n.done && strings.Contains(n.w.String(), n.seen) {
		n.done = true
		close(n.ch)
	}
	return len(p), nil
}

func TestRunShellGuestLeaves(t *testing.T) {
	host, guest := net.Pipe()
	go func() {
		bufio.NewReader(guest).ReadBytes('\n')
		guest.Write([]byte{'d', 0, 0, 0, 2, 'o', 'k'})
		guest.Close()
	}()
	var out bytes.Buffer
	_, err := RunShell(host, ShellRequest{}, nil, &out, nil)
	if !errors.Is(err, ErrShellProtocol) || out.String() != "ok" {
		t.Fatalf("guest gone: %v, %q", err, out.String())
	}
}

func FuzzReadShellFrame(f *testing.F) {
	f.Add([]byte{'d', 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{'x', 0, 0, 0, 4, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			typ, p, err := readShellFrame(r)
			if err != nil {
				return
			}
			if (typ != shellData && typ != shellExit) || (typ == shellExit && len(p) != 4) || len(p) > maxShellFrame {
				t.Fatalf("accepted %q %d bytes", typ, len(p))
			}
		}
	})
}
