//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// image is the busybox image every test runs; its web root holds page.
const (
	image = "berth-e2e/busybox:latest"
	page  = "served from the berth VM\n"
)

// env is one Berth installation under test: the berth binary, its
// BERTH_HOME, and a HOME whose folder the VM shares.
type env struct {
	t         testing.TB
	ctx       context.Context
	berth     string
	dockerBin string
	home      string // $HOME, shared into the VM
	layout    desktop.Layout
	environ   []string
}

// repoRoot is the module's root folder.
func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// newEnv checks what the tests need (skipping with the reason when
// something is missing) and builds berth.
func newEnv(t testing.TB, ctx context.Context) *env {
	if os.Geteuid() != 0 {
		t.Skip("needs root: QEMU with the host's devices and virtiofsd for the shared folder")
	}
	root := repoRoot(t)
	vmDir := filepath.Join(root, "build", "vm", runtime.GOARCH)
	if _, err := os.Stat(filepath.Join(vmDir, "initrd.img")); err != nil {
		t.Skipf("no VM image for %s (make vmimage builds it): %v", runtime.GOARCH, err)
	}
	qemuBin := map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[runtime.GOARCH]
	if _, err := exec.LookPath(qemuBin); err != nil {
		t.Skipf("QEMU (%s) not installed: %v", qemuBin, err)
	}
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("docker CLI not installed: %v", err)
	}
	if _, err := os.Stat(testimage.DefaultBusybox); err != nil {
		t.Skipf("no static busybox for the test image: %v", err)
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// Short paths: the VM's sockets live under BERTH_HOME.
	dir, err := os.MkdirTemp("", "be2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	berth := filepath.Join(dir, "berth")
	build := exec.CommandContext(ctx, goBin, "build", "-o", berth, "./cmd/berth")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/berth: %v\n%s", err, out)
	}
	e := &env{t: t, ctx: ctx, berth: berth, dockerBin: dockerBin, home: filepath.Join(dir, "home"), layout: desktop.Layout{Home: filepath.Join(dir, "b")}}
	if err := os.MkdirAll(e.home, 0o755); err != nil {
		t.Fatal(err)
	}
	e.environ = append(os.Environ(),
		"HOME="+e.home, // the folder the VM shares by default
		"BERTH_HOME="+e.layout.Home,
		"BERTH_VM_DIR="+vmDir,
		"DOCKER_CONFIG="+filepath.Join(dir, "docker-config"),
		"DOCKER_HOST=unix://"+e.layout.DockerSocket(),
	)
	t.Cleanup(func() {
		if pid, alive := desktop.DaemonPID(e.layout); alive {
			e.run(e.berth, "stop")
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return e
}

func (e *env) run(bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(e.ctx, bin, args...)
	cmd.Env = e.environ
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// docker runs the docker CLI against the forwarded socket.
func (e *env) docker(args ...string) (string, error) { return e.run(e.dockerBin, args...) }

// mustDocker runs the docker CLI and fails the test on an error.
func (e *env) mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// start runs `berth start` and fails with the logs when it fails.
func (e *env) start(t testing.TB) {
	t.Helper()
	began := time.Now()
	out, err := e.run(e.berth, "start")
	if err != nil {
		logs, _ := e.run(e.berth, "logs")
		t.Fatalf("berth start: %v\n%s\n%s", err, out, logs)
	}
	t.Logf("berth start: docker ready after %s", time.Since(began).Round(100*time.Millisecond))
}

func (e *env) stop(t testing.TB) {
	t.Helper()
	if out, err := e.run(e.berth, "stop"); err != nil {
		t.Fatalf("berth stop: %v\n%s", err, out)
	}
}

func (e *env) status(t testing.TB) desktop.DaemonStatus {
	t.Helper()
	out, _ := e.run(e.berth, "status", "--json")
	var ds desktop.DaemonStatus
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("berth status --json: %v\n%s", err, out)
	}
	return ds
}

// loadImage loads the test image through the socket.
func (e *env) loadImage(t testing.TB) {
	img, err := testimage.Build(testimage.Options{Tag: image, Files: map[string]string{"www/index.html": page}})
	if err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	if err := img.WriteDockerSave(&tarball); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(e.ctx, e.dockerBin, "load")
	cmd.Env = e.environ
	cmd.Stdin = &tarball
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), image) {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
}

// freePort is a TCP port free on the host's loopback now.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// get fetches url once with a short timeout.
func get(url string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// eventually retries f every 100 ms until it returns nil or a minute has
// passed; then the last error fails the test.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestVM boots one VM and runs the scenarios in order: the later ones stop,
// start and kill the VM that the earlier ones used.
func TestVM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := newEnv(t, ctx)
	e.start(t)
	if ds := e.status(t); ds.State != desktop.StateRunning || ds.Engine != "ready" {
		t.Fatalf("status after start: %+v", ds)
	}
	e.loadImage(t)

	t.Run("run_rm_output", func(t *testing.T) {
		out := e.mustDocker(t, "run", "--rm", image, "echo", "hello from the vm")
		if out != "hello from the vm" {
			t.Fatalf("docker run --rm: %q", out)
		}
		if ps := e.mustDocker(t, "ps", "-aq"); ps != "" {
			t.Fatalf("--rm left a container: %q", ps)
		}
	})

	t.Run("berth_shell", func(t *testing.T) {
		// A login shell on a terminal in the guest, fed from a pipe.
		cmd := exec.CommandContext(e.ctx, e.berth, "shell")
		cmd.Env = e.environ
		cmd.Stdin = strings.NewReader("[ -t 0 ] && echo on-a-tty; echo \"pid1=$(cat /proc/1/comm)\"; ls -d /var/lib/berth; exit 4\n")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 {
			t.Fatalf("berth shell: %v (want exit status 4)\n%s", err, out)
		}
		for _, want := range []string{"on-a-tty", "pid1=init", "/var/lib/berth"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("berth shell output lacks %q:\n%s", want, out)
			}
		}
		// A command instead of the shell.
		if out, err := e.run(e.berth, "shell", "cat", "/proc/sys/kernel/osrelease"); err != nil || !strings.Contains(out, "cloud") {
			t.Fatalf("berth shell cat: %v\n%s", err, out)
		}
	})

	t.Run("bind_mount_under_share", func(t *testing.T) {
		dir := filepath.Join(e.home, "project")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "from-host"), []byte("host data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := e.mustDocker(t, "run", "--rm", "-v", dir+":/data", image, "sh", "-c", "cat /data/from-host && echo container data > /data/from-container")
		if out != "host data" {
			t.Fatalf("the container read %q", out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "from-container"))
		if err != nil || string(b) != "container data\n" {
			t.Fatalf("file the container wrote, seen on the host: %q, %v", b, err)
		}
		// A host path outside the shared folders is refused.
		outside := t.TempDir()
		if out, err := e.docker("run", "--rm", "-v", outside+":/data", image, "true"); err == nil || !strings.Contains(out, "Mounts denied") {
			t.Fatalf("bind of %s, outside the shares: %v\n%s", outside, err, out)
		}
	})

	t.Run("docker_sock_bind", func(t *testing.T) {
		// Containers that drive the engine bind its socket at Docker's path.
		out := e.mustDocker(t, "run", "--rm", "-v", "/var/run/docker.sock:/var/run/docker.sock", image, "sh", "-c", "test -S /var/run/docker.sock && echo socket")
		if out != "socket" {
			t.Fatalf("/var/run/docker.sock in the container: %q", out)
		}
	})

	t.Run("published_port", func(t *testing.T) {
		hostPort := freePort(t)
		url := "http://127.0.0.1:" + strconv.Itoa(hostPort) + "/"
		id := e.mustDocker(t, "run", "-d", "-p", strconv.Itoa(hostPort)+":80", image, "httpd", "-f", "-p", "80", "-h", "/www")
		if ip := e.mustDocker(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id); ip == "" || ip == "invalid IP" {
			e.mustDocker(t, "rm", "-f", id)
			t.Fatalf("the engine gave the container on the default bridge no address (%q)", ip)
		}
		eventually(t, "the published port answering on "+url, func() error {
			body, err := get(url)
			if err == nil && body != page {
				return fmt.Errorf("body %q, want %q", body, page)
			}
			return err
		})
		e.mustDocker(t, "rm", "-f", id)
		eventually(t, "the published port closed after docker rm -f", func() error {
			if _, err := get(url); err == nil {
				return errors.New("still answers")
			}
			return nil
		})
	})

	t.Run("host_docker_internal", func(t *testing.T) {
		// A server on the host's loopback, reached from a container in the
		// VM by host.docker.internal (through the VM's user network).
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "from-the-host") })}
		go srv.Serve(l)
		defer srv.Close()
		url := fmt.Sprintf("http://host.docker.internal:%d/", l.Addr().(*net.TCPAddr).Port)
		out := e.mustDocker(t, "run", "--rm", image, "sh", "-c", "timeout 20 wget -q -O - "+url+"; exit $?")
		if out != "from-the-host" {
			t.Fatalf("wget %s in a container: %q", url, out)
		}
	})

	t.Run("user_network_names", func(t *testing.T) {
		e.mustDocker(t, "network", "create", "e2e-net")
		defer e.docker("network", "rm", "e2e-net")
		id := e.mustDocker(t, "run", "-d", "--name", "e2e-web", "--network", "e2e-net", image, "httpd", "-f", "-p", "80", "-h", "/www")
		defer e.docker("rm", "-f", id)
		out := e.mustDocker(t, "run", "--rm", "--network", "e2e-net", image, "sh", "-c", "timeout 20 wget -q -O - http://e2e-web/; exit $?")
		if out != strings.TrimSpace(page) {
			t.Fatalf("a container reaching e2e-web by name: %q, want %q", out, page)
		}
	})

	t.Run("memory_and_cpu_limits", func(t *testing.T) {
		out := e.mustDocker(t, "run", "--rm", "--memory", "64m", "--cpus", "0.5", image, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max")
		if f := strings.Fields(out); len(f) != 3 || f[0] != strconv.Itoa(64<<20) || f[1] != "50000" || f[2] != "100000" {
			t.Fatalf("memory.max and cpu.max in the container's cgroup: %q", out)
		}
	})

	t.Run("oom_killed", func(t *testing.T) {
		// tail keeps the line it reads in memory; /dev/zero has no end of line.
		out, err := e.docker("run", "--name", "oom", "--memory", "32m", "--memory-swap", "32m", image, "tail", "/dev/zero")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Fatalf("over-limit run: %v (want exit status 137)\n%s", err, out)
		}
		if got := e.mustDocker(t, "inspect", "--format", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"); got != "true 137" {
			t.Fatalf("State.OOMKilled, ExitCode: %q", got)
		}
		e.mustDocker(t, "rm", "oom")
	})

	// What the data disk must keep: the image, a container with a file in
	// its writable layer, and a named volume.
	keep := func(t *testing.T, when string) {
		t.Helper()
		if out := e.mustDocker(t, "image", "inspect", "--format", "{{index .RepoTags 0}}", image); out != image {
			t.Fatalf("%s: image %q", when, out)
		}
		if out := e.mustDocker(t, "ps", "-a", "--filter", "name=kept", "--format", "{{.Names}}"); out != "kept" {
			t.Fatalf("%s: container kept: %q", when, out)
		}
		if out := e.mustDocker(t, "start", "-a", "kept"); out != "layer data\nvolume data" {
			t.Fatalf("%s: docker start -a kept: %q", when, out)
		}
	}
	t.Run("stop_start_keeps_data", func(t *testing.T) {
		e.mustDocker(t, "volume", "create", "keptvol")
		e.mustDocker(t, "run", "--rm", "-v", "keptvol:/v", image, "sh", "-c", "echo volume data > /v/f")
		script := "[ -f /layer ] || echo layer data > /layer; cat /layer; cat /v/f"
		args := []string{"run", "--name", "kept", "-v", "keptvol:/v"}
		e.mustDocker(t, append(args, image, "sh", "-c", script)...)
		keep(t, "before stop")
		e.stop(t)
		if ds := e.status(t); ds.State != desktop.StateStopped {
			t.Fatalf("status after stop: %+v", ds)
		}
		e.start(t)
		keep(t, "after stop and start")
	})

	t.Run("hard_kill_keeps_data", func(t *testing.T) {
		ds := e.status(t)
		if ds.VMPID == 0 {
			t.Fatalf("status reports no QEMU: %+v", ds)
		}
		if err := syscall.Kill(ds.VMPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "status reporting the crash", func() error {
			if ds := e.status(t); ds.State != desktop.StateError {
				return fmt.Errorf("state %s", ds.State)
			}
			return nil
		})
		e.start(t)
		keep(t, "after QEMU was killed")
		if out := e.mustDocker(t, "run", "--rm", image, "echo", "runs again"); out != "runs again" {
			t.Fatalf("docker run after the hard kill: %q", out)
		}
	})
	e.stop(t)
}
