package api

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "docker.sock")
	l, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	// A live socket is not taken over.
	if _, err := Listen("unix://" + sock); err == nil || !strings.Contains(err.Error(), "another process is serving it") {
		t.Errorf("second listen on a live socket: %v", err)
	}
	// A socket left behind by a dead engine is replaced.
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket should still exist: %v", err)
	}
	l2, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial new socket: %v", err)
	}
	c.Close()
	l2.Close()
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ addr, want string }{
		{"/var/run/docker.sock", "address must be unix:///path or tcp://host:port"},
		{"npipe:////./pipe/docker", `unsupported protocol "npipe"`},
		{"unix://relative.sock", "path must be absolute"},
		{"unix://" + regular, "a file that is not a socket is in the way"},
		{"tcp://", "tcp address must be host:port"},
		{"tcp://127.0.0.1:99999", "invalid port"},
		{"tcp://127.0.0.1", "tcp address must be host:port"},
		{"tcp://127.0.0.1:1/x", "tcp address must be host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			l, err := Listen(tt.addr)
			if err == nil {
				l.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(regular); err != nil {
		t.Errorf("the regular file was touched: %v", err)
	}
}

func TestListenTCP(t *testing.T) {
	l, err := Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if a, ok := l.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() || a.Port == 0 {
		t.Errorf("address %v", l.Addr())
	}
}
