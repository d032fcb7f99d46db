//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/api"
)

func TestOwnSocket(t *testing.T) {
	tests := []struct {
		name     string
		replaced bool // another engine's socket is at the path by now
		closing  bool // close the listener instead of removing
		want     bool // the path names a socket afterwards
	}{
		{name: "ours is removed", want: false},
		{name: "another's is kept", replaced: true, want: true},
		{name: "closing the listener keeps the file", closing: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker.sock")
			l, err := api.Listen("unix://" + path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			so, err := own(l.(*net.UnixListener))
			if err != nil {
				t.Fatal(err)
			}
			if tt.replaced {
				// Moved away rather than removed, so that its inode
				// number cannot be reused by the newer socket.
				if err := os.Rename(path, path+".old"); err != nil {
					t.Fatal(err)
				}
				l2, err := api.Listen("unix://" + path)
				if err != nil {
					t.Fatal(err)
				}
				defer l2.Close()
			}
			if tt.closing {
				l.Close()
			} else if err := so.remove(); err != nil {
				t.Fatal(err)
			}
			_, err = os.Lstat(path)
			if got := err == nil; got != tt.want {
				t.Fatalf("socket present afterwards: %v, want %v", got, tt.want)
			}
			if tt.replaced {
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatalf("the newer socket does not answer: %v", err)
				}
				c.Close()
			}
		})
	}
}

// TestShutdownLeavesNewerEngineSocket: an engine shutting down stops
// accepting at once, and while it still stops its containers a newer
// engine can take the socket path, which the old one's cleanup leaves.
func TestShutdownLeavesNewerEngineSocket(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	old, err := startEngine(filepath.Join(workDir, "socket-old"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.cleanup()
	defer old.kill()
	old.watch(t)
	if r := old.docker(nil, "load", "-i", imageTar); r.code != 0 {
		t.Fatalf("%v", r)
	}
	// PID 1 without a handler ignores SIGTERM: the old engine's shutdown
	// waits the whole stop timeout, until the test kills the container.
	id := old.ok(t, "run", "-d", "--stop-timeout", "3600", testImage, "sh", "-c", "while :; do sleep 1; done")
	pid := old.inspect(t, id).State.Pid
	if pid <= 0 {
		t.Fatalf("container %s has no pid", id)
	}
	if err := old.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old engine stops accepting API connections", func() (bool, string) {
		err := old.ping()
		return err != nil, fmt.Sprint("ping: ", err)
	})
	select {
	case <-old.exited:
		t.Fatalf("the old engine exited before its container stopped: %v", old.waitErr)
	default:
	}

	rootB := filepath.Join(workDir, "socket-new")
	newer := &engine{
		root:      rootB,
		dataRoot:  filepath.Join(rootB, "data"),
		execRoot:  filepath.Join(rootB, "exec"),
		sock:      old.sock,
		logPath:   filepath.Join(rootB, "engine.log"),
		cliConfig: filepath.Join(rootB, "cli"),
	}
	for _, d := range []string{rootB, newer.cliConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := newer.start(); err != nil {
		t.Fatalf("newer engine on the same socket: %v", err)
	}
	defer newer.cleanup()
	defer func() { _ = newer.stop() }()

	// Let the old engine finish its shutdown.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill container %s (pid %s): %v", id, strconv.Itoa(pid), err)
	}
	select {
	case <-old.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("the old engine did not exit\n%s", old.logTail(0, 40))
	}
	if old.waitErr != nil {
		t.Errorf("old engine: %v\n%s", old.waitErr, old.logTail(0, 40))
	}
	if err := newer.ping(); err != nil {
		t.Fatalf("the newer engine's socket is gone after the old engine stopped: %v", err)
	}
}
