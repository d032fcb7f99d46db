package desktop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// LastError is what a service process that ended in error leaves behind
// for the next status read.
type LastError struct {
	Error string    `json:"error"`
	Hint  string    `json:"hint"`
	Time  time.Time `json:"time"`
}

// WriteLastError records st's error in the layout.
func WriteLastError(l Layout, st Status) error {
	b, err := json.Marshal(LastError{Error: st.Error, Hint: st.Hint, Time: time.Now()})
	if err != nil {
		return err
	}
	return os.WriteFile(l.LastError(), b, 0o600)
}

// ReadLastError reads what WriteLastError recorded; ok is false when
// nothing was.
func ReadLastError(l Layout) (LastError, bool) {
	var le LastError
	b, err := os.ReadFile(l.LastError())
	if err != nil || json.Unmarshal(b, &le) != nil || le.Error == "" {
		return LastError{}, false
	}
	return le, true
}

// ClearLastError forgets the recorded error.
func ClearLastError(l Layout) { os.Remove(l.LastError()) }

// DaemonPID reads the pid file; alive tells whether that process still
// exists. It returns 0 when there is no pid file.
func DaemonPID(l Layout) (pid int, alive bool) {
	b, err := os.ReadFile(l.PIDFile())
	if err != nil {
		return 0, false
	}
	pid, err = parsePID(b)
	if err != nil {
		return 0, false
	}
	return pid, processAlive(pid)
}

// parsePID reads a pid file's content: a positive decimal and a newline.
func parsePID(b []byte) (int, error) {
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file: not a pid: %q", b)
	}
	return pid, nil
}

// Inspect reports the state of the service of layout l from a separate
// process: the live service's status, or, when none answers, stopped, or
// error when the service process died (its pid file remains) or ended in
// error.
func Inspect(ctx context.Context, l Layout) DaemonStatus {
	c := NewControlClient(l)
	defer c.Close()
	ds, err := c.Status(ctx)
	if err == nil {
		return ds
	}
	ds = DaemonStatus{Status: Status{State: StateStopped}, Home: l.Home, Console: l.ConsoleLog(), Log: l.DaemonLog()}
	if pid, alive := DaemonPID(l); pid != 0 {
		ds.PID = pid
		ds.State = StateError
		if alive {
			ds.Error = fmt.Sprintf("the berth service process (pid %d) does not answer on %s: %v", pid, l.ControlSocket(), err)
			ds.Hint = "run `berth stop` to end it, then `berth start`"
		} else {
			ds.Error = fmt.Sprintf("the berth service process (pid %d) ended without stopping (crashed or killed)", pid)
			ds.Hint = "see `berth logs`, then run `berth start` again"
		}
		return ds
	}
	if le, ok := ReadLastError(l); ok {
		ds.State, ds.Error, ds.Hint = StateError, le.Error, le.Hint
	}
	return ds
}
