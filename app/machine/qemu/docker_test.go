package qemu

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/forward"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// TestBootDockerThroughSocket boots the real VM image, forwards the docker
// socket to the guest's Docker API port and drives it with the real docker
// CLI; then the port events stream opens and the VM stops gracefully.
func TestBootDockerThroughSocket(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("docker CLI not installed: %v", err)
	}
	kernel, initrd := vmImage(t)
	cfg := bootConfig(t, kernel, initrd)
	cfg.MemoryMiB = 1024
	cfg.CPUs = 2
	cfg.Disk.SizeBytes = 2 << 30
	share := t.TempDir()
	cfg.Shares = []machine.Share{{Tag: "share0", HostPath: share, GuestPath: share}}
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer vm.Stop(context.Background())
	console := func() string { b, _ := os.ReadFile(cfg.ConsoleLogPath); return string(b) }

	sock := filepath.Join(t.TempDir(), "run", "docker.sock")
	ds, err := forward.ListenDocker(sock, vm, nil)
	if err != nil {
		t.Fatal(err)
	}
	go ds.Serve()
	defer ds.Close()

	c := hostlink.NewClient(vm)
	defer c.Close()
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := c.Status(actx)
		acancel()
		if err == nil && st.Engine == hostlink.EngineReady {
			break
		}
		if err == nil && st.Engine == hostlink.EngineFailed {
			if strings.Contains(console(), "engine: not implemented") {
				t.Skip("the VM image's agent has no engine yet (berth-agent engine: not implemented); rebuild it with make vmimage once the engine lands")
			}
			t.Fatalf("guest engine failed:\n%s", console())
		}
		select {
		case <-vm.Done():
			t.Fatalf("vm ended: %v\n%s", vm.Err(), console())
		case <-ctx.Done():
			t.Fatalf("engine not ready (%v):\n%s", err, console())
		case <-time.After(200 * time.Millisecond):
		}
	}

	docker := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dockerBin, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := docker("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}")
	if err != nil || strings.TrimSpace(out) != "linux/amd64" {
		t.Fatalf("docker version through the socket: %v\n%s", err, out)
	}
	if out, err := docker("info", "--format", "{{.Name}}"); err != nil {
		t.Fatalf("docker info: %v\n%s", err, out)
	}

	// An image loaded through the socket runs with its output coming back.
	const tag = "berthtest/busybox:latest"
	if out, err := docker("load", "-i", busyboxImageTar(t, tag, "served by berth\n")); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	if out, err := docker("run", "--rm", tag, "/bin/busybox", "echo", "hello from the vm"); err != nil || strings.TrimSpace(out) != "hello from the vm" {
		t.Fatalf("docker run: %v\n%s", err, out)
	}

	// A bind mount under a share (virtiofs): the container reads what the
	// host wrote, and the host sees what the container wrote.
	if err := os.WriteFile(filepath.Join(share, "from-host"), []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = docker("run", "--rm", "-v", share+":/data", tag, "/bin/sh", "-c", "cat /data/from-host; echo container data > /data/from-container")
	if err != nil || strings.TrimSpace(out) != "host data" {
		t.Fatalf("docker run -v %s: %v\n%s", share, err, out)
	}
	if b, err := os.ReadFile(filepath.Join(share, "from-container")); err != nil || string(b) != "container data\n" {
		t.Fatalf("file written by the container: %q, %v", b, err)
	}

	t.Run("published port", func(t *testing.T) {
		// A published port answers on the host while the container lives,
		// and stops answering after docker rm -f.
		ports := forward.NewPorts(vm, nil)
		defer ports.Close()
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		go ports.FollowGuest(fctx, c)
		hostPort := freeLoopbackPort(t, "tcp")
		url := "http://127.0.0.1:" + strconv.Itoa(hostPort) + "/"
		out, err = docker("run", "-d", "-p", "127.0.0.1:"+strconv.Itoa(hostPort)+":80", tag, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
		if err != nil {
			t.Fatalf("docker run -d -p: %v\n%s", err, out)
		}
		id := strings.TrimSpace(out)
		// The guest announces the port on its event stream; FollowGuest opens
		// the host listener.
		for deadline := time.Now().Add(time.Minute); len(ports.List()) == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				docker("rm", "-f", id)
				t.Skip("the guest announced no port event for docker run -p: the engine does not feed guestagent/link's port events yet")
			}
		}
		var body string
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get(url)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if body != "served by berth\n" {
			logs, _ := docker("logs", id)
			t.Fatalf("published port answered %q; forwarded %+v; container logs:\n%s", body, ports.List(), logs)
		}
		if out, err := docker("rm", "-f", id); err != nil {
			t.Fatalf("docker rm -f: %v\n%s", err, out)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get(url)
			if err != nil {
				break
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("published port still answers after docker rm -f")
			}
		}
	})

	d, err := c.Disk(ctx)
	if err != nil || d.TotalBytes == 0 {
		t.Fatalf("disk %+v, %v", d, err)
	}
	t.Logf("guest data disk: %+v", d)
	ectx, ecancel := context.WithCancel(ctx)
	es, err := c.Events(ectx)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	ecancel()
	es.Close()

	stopCtx, stopCancel := context.WithTimeout(ctx, time.Minute)
	defer stopCancel()
	if err := vm.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if vm.State() != machine.StateStopped || vm.Err() != nil {
		t.Fatalf("after Stop: %s, %v\n%s", vm.State(), vm.Err(), console())
	}
}
