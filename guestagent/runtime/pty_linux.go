package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// The terminal of a container (or exec) is a pty of the container's own
// devpts instance, as with runc: the child opens /dev/ptmx after pivoting,
// makes the slave its stdio and controlling terminal, and passes the master
// to the engine over the sync socket (SCM_RIGHTS, one byte 'c'), so that
// tty(1) inside says /dev/pts/0 and the slave exists in the container.

// openContainerPty opens a new pty in the current root's /dev/ptmx and
// returns the master and the slave, whose owner becomes uid.
func openContainerPty(uid int) (master, slave int, name string, err error) {
	master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(e error) (int, int, string, error) {
		unix.Close(master)
		return -1, -1, "", e
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlock pty: %w", err))
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("get pty number: %w", err))
	}
	name = "/dev/pts/" + strconv.Itoa(n)
	slave, err = unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", name, err))
	}
	if uid != 0 {
		if err := unix.Fchown(slave, uid, -1); err != nil {
			unix.Close(slave)
			return fail(fmt.Errorf("chown %s: %w", name, err))
		}
	}
	return master, slave, name, nil
}

// sendConsole passes the master to the engine.
func sendConsole(master int) error {
	if err := unix.Sendmsg(fdSync, []byte{'c'}, unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty master: %w", err)
	}
	return nil
}

// recvConsole receives the master the child sends first when it has a
// terminal. If the child fails before, the byte read starts its error
// message, so the returned decoder reads on from it.
func recvConsole(sync *os.File) (*os.File, *json.Decoder, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(sync.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("receive pty master: %w", err)
	}
	if n == 1 && buf[0] == 'c' && oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return nil, nil, fmt.Errorf("receive pty master: bad control message: %v", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return nil, nil, fmt.Errorf("receive pty master: %v", err)
		}
		return os.NewFile(uintptr(fds[0]), "pty-master"), json.NewDecoder(sync), nil
	}
	return nil, json.NewDecoder(io.MultiReader(bytes.NewReader(buf[:n]), sync)), nil
}

// setupConsole applies the requested size to a received master.
func setupConsole(master *os.File, size [2]uint) error {
	if size[0] == 0 && size[1] == 0 {
		return nil
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: uint16(size[0]), Cols: uint16(size[1])}); err != nil {
		return fmt.Errorf("set pty size: %w", err)
	}
	return nil
}
