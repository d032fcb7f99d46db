package link

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// ShellProcess is a process the shell service started.
type ShellProcess struct {
	// Exited delivers the exit status (128+signal when killed) once.
	Exited <-chan int
	// Signal signals the process group.
	Signal func(syscall.Signal)
}

// Shell serves the shell port (1026): a command, a login shell unless the
// request names one, on a new pseudo-terminal whose size follows the
// host's window.
type Shell struct {
	// Spawn starts argv with env as a session leader whose stdin, stdout,
	// stderr and controlling terminal are tty. pid1 starts it through its
	// reaper (nothing else may wait for its children).
	Spawn func(argv, env []string, tty *os.File) (ShellProcess, error)
	// DefaultShell is run when the request names no command ("/bin/sh -l"
	// when nil).
	DefaultShell []string
	Log          *slog.Logger
}

// shellEnv is the environment of the shell.
func shellEnv(term string) []string {
	if term == "" {
		term = "xterm"
	}
	return []string{
		"TERM=" + term,
		"HOME=/root",
		"USER=root",
		"LOGNAME=root",
		"SHELL=/bin/sh",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		`PS1=berth:\w\$ `,
	}
}

// ServeConn is the port 1026 Handler.
func (s *Shell) ServeConn(conn net.Conn) {
	defer conn.Close()
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	br := bufio.NewReader(conn)
	req, err := ReadShellRequest(br)
	if err != nil {
		log.Warn("link: shell request", "err", err)
		return
	}
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return WriteShellFrame(conn, typ, p)
	}
	exit := func(code int) {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
		send(ShellExit, b[:])
	}
	fail := func(err error) {
		log.Warn("link: shell", "err", err)
		send(ShellData, []byte("berth shell: "+err.Error()+"\r\n"))
		exit(127)
	}
	if s.Spawn == nil {
		fail(errors.New("no process spawner"))
		return
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		fail(fmt.Errorf("open a pseudo-terminal: %w", err))
		return
	}
	defer ptmx.Close()
	if req.Cols > 0 && req.Rows > 0 {
		pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(req.Cols), Rows: uint16(req.Rows)})
	}
	argv := req.Cmd
	if len(argv) > 0 && !strings.Contains(argv[0], "/") {
		// A bare name is found by the shell (on PATH, or a busybox applet).
		argv = append([]string{"/bin/sh", "-c", `exec "$@"`, "sh"}, argv...)
	}
	if len(argv) == 0 {
		argv = s.DefaultShell
		if len(argv) == 0 {
			argv = []string{"/bin/sh", "-l"}
		}
	}
	proc, err := s.Spawn(argv, shellEnv(req.Term), tty)
	tty.Close()
	if err != nil {
		fail(fmt.Errorf("start %s: %w", argv[0], err))
		return
	}

	// Host -> terminal; the host leaving hangs the session up.
	go func() {
		for {
			typ, p, err := ReadShellFrame(br)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					log.Debug("link: shell input", "err", err)
				}
				proc.Signal(syscall.SIGHUP)
				return
			}
			switch typ {
			case ShellData:
				if _, err := ptmx.Write(p); err != nil {
					return
				}
			case ShellResize:
				cols, rows := binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4])
				if cols > 0 && rows > 0 {
					pty.Setsize(ptmx, &pty.Winsize{Cols: cols, Rows: rows})
				}
			}
		}
	}()

	// Terminal -> host, until the terminal has no writer left (EIO) or,
	// once the process ended, a background child keeps it open.
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				if send(ShellData, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	code := <-proc.Exited
	select {
	case <-outDone:
	case <-time.After(time.Second):
		if ptmx.SetReadDeadline(time.Now()) == nil {
			<-outDone
		}
	}
	exit(code)
}
