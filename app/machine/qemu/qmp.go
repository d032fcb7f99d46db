package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmpMessage is one line QEMU's monitor sends: a greeting, a command's
// return or error, or an asynchronous event.
type qmpMessage struct {
	Greeting json.RawMessage `json:"QMP,omitempty"`
	Return   json.RawMessage `json:"return,omitempty"`
	Error    *qmpError       `json:"error,omitempty"`
	Event    string          `json:"event,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// kind tells what a message is.
func (m qmpMessage) kind() string {
	switch {
	case m.Event != "":
		return "event"
	case m.Greeting != nil:
		return "greeting"
	case m.Error != nil || m.Return != nil:
		return "reply"
	}
	return ""
}

// parseQMP decodes one line of the monitor protocol.
func parseQMP(line []byte) (qmpMessage, error) {
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMessage{}, fmt.Errorf("decode qmp message: %w", err)
	}
	if m.kind() == "" {
		return qmpMessage{}, fmt.Errorf("decode qmp message: neither greeting, reply nor event: %.80s", line)
	}
	return m, nil
}

// shutdownReason extracts the reason of a SHUTDOWN event ("guest-shutdown",
// "guest-panic", "guest-reset", "host-qmp-quit", ...).
func shutdownReason(data json.RawMessage) string {
	var d struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal(data, &d)
	return d.Reason
}

// qmpClient is one connection to QEMU's monitor. QEMU serves one client at
// a time, so the driver keeps this one for both commands and events.
type qmpClient struct {
	conn    net.Conn
	onEvent func(name string, data json.RawMessage)

	mu      sync.Mutex // one command at a time
	replies chan qmpMessage
	done    chan struct{} // closed when the reader ends
}

// dialQMP connects to the monitor socket, retrying until ctx ends or
// alive returns false, and negotiates capabilities.
func dialQMP(ctx context.Context, path string, alive func() bool, onEvent func(string, json.RawMessage)) (*qmpClient, error) {
	var conn net.Conn
	for {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		if !alive() {
			return nil, fmt.Errorf("connect qmp %s: qemu exited", path)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect qmp %s: %w (last: %w)", path, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	q := &qmpClient{conn: conn, onEvent: onEvent, replies: make(chan qmpMessage, 1), done: make(chan struct{})}
	greeting := make(chan error, 1)
	go q.read(greeting)
	select {
	case err := <-greeting:
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("qmp %s greeting: %w", path, err)
		}
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("qmp %s greeting: %w", path, ctx.Err())
	}
	if err := q.execute(ctx, "qmp_capabilities"); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpClient) read(greeting chan<- error) {
	defer close(q.done)
	sc := bufio.NewScanner(q.conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		m, err := parseQMP(sc.Bytes())
		if first {
			first = false
			if err == nil && m.kind() != "greeting" {
				err = errors.New("first message is not a greeting")
			}
			greeting <- err
			if err != nil {
				return
			}
			continue
		}
		if err != nil {
			continue
		}
		switch m.kind() {
		case "event":
			if q.onEvent != nil {
				q.onEvent(m.Event, m.Data)
			}
		case "reply":
			select {
			case q.replies <- m:
			default: // nobody waits: a reply to a timed-out command
			}
		}
	}
	if first {
		greeting <- errors.New("connection closed before the greeting")
	}
}

// execute runs a command without arguments and waits for its reply.
func (q *qmpClient) execute(ctx context.Context, cmd string) error {
	return q.executeArgs(ctx, cmd, nil)
}

// executeArgs runs a command with its arguments and waits for its reply.
func (q *qmpClient) executeArgs(ctx context.Context, cmd string, args any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	b, _ := json.Marshal(msg)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return fmt.Errorf("qmp %s: %w", cmd, m.Error)
		}
		return nil
	case <-q.done:
		// The monitor closed: for quit that is the expected answer.
		if cmd == "quit" {
			return nil
		}
		return fmt.Errorf("qmp %s: monitor closed", cmd)
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

func (q *qmpClient) Close() error { return q.conn.Close() }
