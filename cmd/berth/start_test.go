//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/internal/testimage"
)

// buildBerth builds this command into a temporary folder.
func buildBerth(t *testing.T) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "berth")
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// TestStartDockerStop runs the real berth binary: start boots the VM image
// of build/vm/amd64 in a temporary BERTH_HOME, the real docker CLI imports
// and runs an image through the printed socket, status --json reports it
// running, and stop leaves no QEMU behind.
func TestStartDockerStop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (QEMU with the host's devices, virtiofsd)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the VM image under test is build/vm/amd64, booted on a Linux amd64 host")
	}
	vmDir, err := filepath.Abs(filepath.Join("..", "..", "build", "vm", "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vmDir, "vmlinuz")); err != nil {
		t.Skipf("no VM image (run make vmimage): %v", err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("QEMU not installed: %v", err)
	}
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("docker CLI not installed: %v", err)
	}
	berth := buildBerth(t)
	// Short paths: the VM's sockets live under BERTH_HOME.
	home, err := os.MkdirTemp("", "bh")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	dockerConfig := t.TempDir()
	env := append(os.Environ(), "BERTH_HOME="+home, "BERTH_VM_DIR="+vmDir, "DOCKER_CONFIG="+dockerConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, berth, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	logs := func() string { out, _ := b("logs"); return out }
	l := desktop.Layout{Home: home}
	defer func() {
		if pid, alive := desktop.DaemonPID(l); alive {
			b("stop")
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()

	began := time.Now()
	out, err := b("start")
	if err != nil {
		t.Fatalf("berth start: %v\n%s\n%s", err, out, logs())
	}
	t.Logf("berth start to docker ready: %s\n%s", time.Since(began).Round(100*time.Millisecond), out)
	var host string
	for _, line := range strings.Split(out, "\n") {
		if h, ok := strings.CutPrefix(strings.TrimSpace(line), "export DOCKER_HOST="); ok {
			host = h
		}
	}
	if host != "unix://"+l.DockerSocket() {
		t.Fatalf("printed DOCKER_HOST %q, want unix://%s", host, l.DockerSocket())
	}
	if out, err := b("start"); err != nil || !strings.Contains(out, "already running") {
		t.Fatalf("second berth start: %v\n%s", err, out)
	}

	docker := func(stdin []byte, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dockerBin, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+dockerConfig)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := docker(nil, "version"); err != nil {
		t.Fatalf("docker version: %v\n%s", err, out)
	}
	var rootfs bytes.Buffer
	if err := testimage.WriteRootfs(&rootfs, testimage.Options{}); err != nil {
		t.Fatal(err)
	}
	const image = "berth-test/imported:latest"
	if out, err := docker(rootfs.Bytes(), "import", "-", image); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	if out, err := docker(nil, "run", "--rm", image, "echo", "hi"); err != nil || strings.TrimSpace(out) != "hi" {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	// The context berth points at the same socket.
	cmd := exec.CommandContext(ctx, dockerBin, "--context", "berth", "version", "--format", "{{.Server.Os}}")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "linux" {
		t.Fatalf("docker --context berth version: %v\n%s", err, out)
	}

	out, err = b("status", "--json")
	if err != nil {
		t.Fatalf("berth status --json: %v\n%s", err, out)
	}
	var ds desktop.DaemonStatus
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if ds.State != desktop.StateRunning || ds.PID == 0 || ds.VMPID == 0 || ds.Versions.Kernel == "" || ds.Engine != "ready" {
		t.Fatalf("status: %+v", ds)
	}
	qemuPID := ds.VMPID

	if out, err := b("stop"); err != nil {
		t.Fatalf("berth stop: %v\n%s", err, out)
	}
	if alive(qemuPID) {
		t.Fatalf("QEMU (pid %d) still running after berth stop", qemuPID)
	}
	if _, alive := desktop.DaemonPID(l); alive {
		t.Fatal("service process still running after berth stop")
	}
	out, err = b("status", "--json")
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || ds.State != desktop.StateStopped {
		t.Fatalf("status after stop: %v\n%s", err, out)
	}
	if _, err := os.Stat(l.DockerSocket()); !os.IsNotExist(err) {
		t.Errorf("docker socket left after stop: %v", err)
	}
}

// alive tells whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
