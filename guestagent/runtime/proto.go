package runtime

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// The runtime re-executes the agent binary as InitCommand once per
// container (and once per exec). The parent hands over:
//
//	fd 0-2  the process's stdio (pty slave, pipes or /dev/null)
//	fd 3    a pipe carrying one JSON initConfig, closed after it
//	fd 4    a unix stream socket for synchronisation
//	fd 5    with --init, a detached bind mount (open_tree) of the agent
//	        binary, for /sbin/docker-init
//
// On fd 4 the child writes JSON lines (syncMsg): "ready" once everything up
// to exec is done, or "error" with the reason; the parent answers "ready"
// with one byte to go on, after which the child execs the user's process.
// fd 4 is close-on-exec in the child, so the parent reads EOF when exec
// succeeded and an "error" line when it did not. An exec helper reports
// "pid" after forking the process and "exit" after reaping it.
const (
	fdConfig = 3
	fdSync   = 4
	fdReaper = 5
)

const (
	modeCreate = "create"
	modeExec   = "exec"
)

// initConfig is what the child needs; it travels as JSON over fd 3.
type initConfig struct {
	Mode string `json:"mode"`

	// Filter is the compiled seccomp program (8 bytes per instruction,
	// little endian), empty for none; the spec's own profile is not sent.
	Filter []byte `json:"filter,omitempty"`

	// create
	Spec      *specs.Spec   `json:"spec,omitempty"`
	Rootfs    []RootfsMount `json:"rootfs,omitempty"`
	RootfsDir string        `json:"rootfsDir,omitempty"`
	Init      bool          `json:"init,omitempty"`
	ReaperFD  int           `json:"reaperFD,omitempty"` // fd of the agent binary's mount

	// exec
	Process  *specs.Process `json:"process,omitempty"`
	InitPid  int            `json:"initPid,omitempty"`
	Joins    []string       `json:"joins,omitempty"` // namespace names under /proc/PID/ns
	Terminal bool           `json:"terminal,omitempty"`
}

// syncMsg is one line the child writes on fd 4.
type syncMsg struct {
	Type   string `json:"type"` // ready, error, pid, exit
	Error  string `json:"error,omitempty"`
	Pid    int    `json:"pid,omitempty"`
	Code   int    `json:"code,omitempty"`
	Signal int    `json:"signal,omitempty"`
}

func writeMsg(w io.Writer, m syncMsg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readMsg reads one message; io.EOF means the peer closed (exec'd or died).
func readMsg(d *json.Decoder) (syncMsg, error) {
	var m syncMsg
	if err := d.Decode(&m); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return m, io.EOF
		}
		return m, fmt.Errorf("read sync message: %w", err)
	}
	return m, nil
}

// encodeFilter packs a program as struct sock_filter array bytes.
func encodeFilter(prog []bpf.RawInstruction) []byte {
	b := make([]byte, 8*len(prog))
	for i, in := range prog {
		binary.LittleEndian.PutUint16(b[8*i:], in.Op)
		b[8*i+2], b[8*i+3] = in.Jt, in.Jf
		binary.LittleEndian.PutUint32(b[8*i+4:], in.K)
	}
	return b
}

// decodeFilter undoes encodeFilter.
func decodeFilter(b []byte) ([]bpf.RawInstruction, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("seccomp program of %d bytes is not whole instructions", len(b))
	}
	prog := make([]bpf.RawInstruction, len(b)/8)
	for i := range prog {
		prog[i] = bpf.RawInstruction{
			Op: binary.LittleEndian.Uint16(b[8*i:]), Jt: b[8*i+2], Jf: b[8*i+3],
			K: binary.LittleEndian.Uint32(b[8*i+4:]),
		}
	}
	return prog, nil
}
