package runtime

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaperSyncEnv names the descriptor of the runtime's sync socket in the
// reaper's environment; the reaper removes it before starting the child.
const reaperSyncEnv = "BERTH_REAPER_SYNC_FD"

// Reaper runs args as a child, forwards signals to it, reaps every zombie,
// and returns the child's exit status (128+signal when killed). A leading
// "--" is skipped, as tini does. Outside PID 1 it makes itself a child
// subreaper so orphans still come to it.
func Reaper(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "%s: usage: %s [--] COMMAND [ARG...]\n", ReaperName, ReaperName)
		return 1
	}
	path, err := lookPath(args[0], os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ReaperName, err)
		if ee, ok := err.(*exec.Error); ok && ee.Err == fs.ErrPermission {
			return 126
		}
		return 127
	}
	if b, err := os.ReadFile("/proc/self/comm"); err == nil && string(b) != ReaperName+"\n" {
		// Exec'd through /proc/self/exe, it would be listed as "exe".
		os.WriteFile("/proc/self/comm", []byte(ReaperName), 0)
	}
	if os.Getpid() != 1 {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	// Signals are caught from here on: tell the runtime (whose Start
	// waits for this) by closing the sync socket it passed.
	if v, ok := os.LookupEnv(reaperSyncEnv); ok {
		os.Unsetenv(reaperSyncEnv)
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			unix.Close(fd)
		}
	}
	// The child gets its own process group and, on a terminal, the
	// foreground, so ^C reaches it once (forwarded by us it would twice).
	tty := false
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		tty = true
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Foreground: tty, Ctty: 0},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: exec %s: %v\n", ReaperName, args[0], err)
		return 126
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			// SIGURG is the Go runtime's own preemption signal.
			if s != syscall.SIGURG {
				syscall.Kill(pid, s)
			}
			continue
		}
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || got <= 0 {
				break
			}
			if got == pid {
				return waitStatus(ws).Code
			}
		}
	}
	return 1
}
