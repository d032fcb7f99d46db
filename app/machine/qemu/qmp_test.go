package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseQMP(t *testing.T) {
	tests := []struct {
		line string
		kind string
	}{
		{`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}`, "greeting"},
		{`{"return": {}}`, "reply"},
		{`{"error": {"class": "GenericError", "desc": "nope"}}`, "reply"},
		{`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}`, "event"},
		{`{}`, ""},
		{`[1]`, ""},
		{`{"return"`, ""},
	}
	for _, tc := range tests {
		m, err := parseQMP([]byte(tc.line))
		if tc.kind == "" {
			if err == nil {
				t.Errorf("%s: parsed as %q, want error", tc.line, m.kind())
			}
			continue
		}
		if err != nil || m.kind() != tc.kind {
			t.Errorf("%s: kind %q, %v; want %q", tc.line, m.kind(), err, tc.kind)
		}
	}
	if r := shutdownReason(json.RawMessage(`{"guest":true,"reason":"guest-panic"}`)); r != "guest-panic" {
		t.Fatalf("reason %q", r)
	}
}

func FuzzParseQMP(f *testing.F) {
	f.Add([]byte(`{"return": {}}`))
	f.Add([]byte(`{"event": "SHUTDOWN", "data": {"reason": "guest-reset"}}`))
	f.Add([]byte(`{"QMP": {}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseQMP(line)
		if err == nil && m.kind() == "" {
			t.Fatal("parsed message has no kind")
		}
		if m.Event == "SHUTDOWN" {
			shutdownReason(m.Data)
		}
	})
}

// fakeMonitor answers like QEMU's QMP: a greeting, a return per command,
// and an event before the reply to system_powerdown.
func fakeMonitor(t *testing.T) (path string, got *[]string, mu *sync.Mutex) {
	path = filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got, mu = new([]string), new(sync.Mutex)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\r\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var cmd struct {
				Execute string `json:"execute"`
			}
			json.Unmarshal(sc.Bytes(), &cmd)
			mu.Lock()
			*got = append(*got, cmd.Execute)
			mu.Unlock()
			switch cmd.Execute {
			case "system_powerdown":
				c.Write([]byte(`{"event": "POWERDOWN", "data": {}}` + "\r\n"))
				c.Write([]byte(`{"return": {}}` + "\r\n"))
			case "quit":
				c.Write([]byte(`{"return": {}}` + "\r\n"))
				c.Write([]byte(`{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}` + "\r\n"))
				return
			case "qmp_capabilities":
				c.Write([]byte(`{"return": {}}` + "\r\n"))
			default:
				c.Write([]byte(`{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd.Execute + ` has not been found"}}` + "\r\n"))
			}
		}
	}()
	return path, got, mu
}

func TestQMPClient(t *testing.T) {
	path, got, mu := fakeMonitor(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := make(chan string, 4)
	q, err := dialQMP(ctx, path, func() bool { return true }, func(name string, data json.RawMessage) {
		events <- name + " " + shutdownReason(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.execute(ctx, "system_powerdown"); err != nil {
		t.Fatal(err)
	}
	if err := q.execute(ctx, "no-such"); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Fatalf("unknown command error %v", err)
	}
	if err := q.execute(ctx, "quit"); err != nil {
		t.Fatal(err)
	}
	if e := <-events; e != "POWERDOWN " {
		t.Fatalf("first event %q", e)
	}
	if e := <-events; e != "SHUTDOWN host-qmp-quit" {
		t.Fatalf("second event %q", e)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"qmp_capabilities", "system_powerdown", "no-such", "quit"}
	if strings.Join(*got, ",") != strings.Join(want, ",") {
		t.Fatalf("monitor got %q, want %q", *got, want)
	}
}

func TestQMPDialGivesUpWhenQEMUExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := dialQMP(ctx, filepath.Join(t.TempDir(), "none.sock"), func() bool { return false }, nil)
	if err == nil || !strings.Contains(err.Error(), "qemu exited") {
		t.Fatalf("error %v", err)
	}
}
