//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"context"
	"encoding/json"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthdesktop/berth/internal/testimage"
)

// registryBin is Debian's docker-registry (make deps installs it).
const registryBin = "/usr/bin/docker-registry"

// startHostRegistry runs a plain-HTTP registry on the host's loopback and
// returns its port; the VM reaches it through its gateway.
func startHostRegistry(t *testing.T) int {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Skipf("needs %s (Debian package docker-registry): %v", registryBin, err)
	}
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n", filepath.Join(dir, "data"), port)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBin, "serve", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, "the host registry answering", func() error {
		_, err := get(fmt.Sprintf("http://127.0.0.1:%d/v2/", port))
		return err
	})
	return port
}

// pushTestImage pushes the test image to the host registry as ref.
func pushTestImage(t *testing.T, ref string) {
	t.Helper()
	img, err := testimage.Build(testimage.Options{Tag: "e2e/busybox:latest"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := img.WriteDockerSave(&buf); err != nil {
		t.Fatal(err)
	}
	v1img, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, v1img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// vmUptime is the VM's uptime in seconds: it keeps growing unless the VM
// restarted.
func (e *env) vmUptime(t *testing.T) float64 {
	t.Helper()
	out, err := e.run(e.berth, "shell", "cat", "/proc/uptime")
	if err != nil {
		t.Fatalf("berth shell cat /proc/uptime: %v\n%s", err, out)
	}
	f, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if err != nil {
		t.Fatalf("uptime %q: %v", out, err)
	}
	return f
}

// vmShell runs a command in the VM and returns its trimmed output.
func (e *env) vmShell(t *testing.T, cmd string) string {
	t.Helper()
	out, err := e.run(e.berth, "shell", "sh", "-c", cmd)
	if err != nil {
		t.Fatalf("berth shell %s: %v\n%s", cmd, err, out)
	}
	return strings.TrimSpace(out)
}

// berthOK runs berth and fails the test when it fails.
func (e *env) berthOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(e.berth, args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestSettingsApply changes the settings of a running VM the way a user
// does, with `berth settings` and `berth engine config`, and sees each
// change in the VM; then uninstalls.
func TestSettingsApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e := newEnv(t, ctx)
	e.start(t)
	e.loadImage(t)

	t.Run("insecure_registry_by_daemon_json", func(t *testing.T) {
		port := startHostRegistry(t)
		pushTestImage(t, fmt.Sprintf("127.0.0.1:%d/e2e/busybox:latest", port))
		gw := e.vmShell(t, "ip route | awk '/^default/ {print $3}'")
		ref := fmt.Sprintf("%s:%d/e2e/busybox:latest", gw, port)
		if out, err := e.docker("pull", ref); err == nil {
			t.Fatalf("pull over plain HTTP before the registry is insecure: %s", out)
		}
		up := e.vmUptime(t)
		dj := filepath.Join(t.TempDir(), "daemon.json")
		os.WriteFile(dj, []byte(fmt.Sprintf("{\n  \"insecure-registries\": [\"%s:%d\"]\n}\n", gw, port)), 0o644)
		out := e.berthOK(t, "engine", "config", "apply", dj)
		if !strings.Contains(out, "restarted the engine") || !strings.Contains(out, "saved and applied") {
			t.Errorf("engine config apply said:\n%s", out)
		}
		if after := e.vmUptime(t); after < up {
			t.Fatalf("the VM restarted (uptime %.1f then %.1f); only the engine should", up, after)
		}
		if out := e.mustDocker(t, "pull", ref); !strings.Contains(out, "Downloaded newer image") && !strings.Contains(out, "Image is up to date") {
			t.Fatalf("pull after the apply: %s", out)
		}
		if out := e.mustDocker(t, "run", "--rm", ref, "echo", "pulled"); out != "pulled" {
			t.Fatalf("run of the pulled image: %q", out)
		}
	})

	t.Run("bad_daemon_json_refused", func(t *testing.T) {
		before := e.berthOK(t, "engine", "config", "show")
		dj := filepath.Join(t.TempDir(), "daemon.json")
		os.WriteFile(dj, []byte("{\n  \"debug\": true,\n  \"no-such-key\": 1\n}\n"), 0o644)
		out, err := e.run(e.berth, "engine", "config", "apply", dj)
		if err == nil || !strings.Contains(out, "no-such-key") || !strings.Contains(out, "line 3") {
			t.Fatalf("apply of a bad daemon.json: %v\n%s", err, out)
		}
		if after := e.berthOK(t, "engine", "config", "show"); after != before {
			t.Fatalf("the settings changed:\n%s\nthen\n%s", before, after)
		}
		if out := e.mustDocker(t, "run", "--rm", image, "echo", "still running"); out != "still running" {
			t.Fatalf("engine after the refusal: %q", out)
		}
	})

	t.Run("disk_grows_online", func(t *testing.T) {
		size := func() int64 {
			n, err := strconv.ParseInt(e.vmShell(t, "df -k /var/lib/berth | awk 'NR==2 {print $2}'"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
		before, up := size(), e.vmUptime(t)
		gib := strings.TrimSpace(e.berthOK(t, "settings", "get", "resources.diskGiB"))
		n, _ := strconv.Atoi(gib)
		out := e.berthOK(t, "settings", "set", "resources.diskGiB", strconv.Itoa(n+4))
		if !strings.Contains(out, "online") {
			t.Errorf("set diskGiB said:\n%s", out)
		}
		after := size()
		if after-before < 3<<30 {
			t.Fatalf("filesystem %d bytes before, %d after growing the disk by 4 GiB", before, after)
		}
		if e.vmUptime(t) < up {
			t.Fatal("the VM restarted to grow the disk")
		}
		t.Logf("data filesystem %.1f -> %.1f GiB online", float64(before)/(1<<30), float64(after)/(1<<30))
	})

	t.Run("cpus_and_memory_restart_the_vm", func(t *testing.T) {
		e.berthOK(t, "settings", "set", "resources.cpus", "1")
		out := e.berthOK(t, "settings", "set", "resources.memoryMiB", "1536")
		if !strings.Contains(out, "restarted the VM") {
			t.Errorf("set memoryMiB said:\n%s", out)
		}
		if n := e.vmShell(t, "nproc"); n != "1" {
			t.Fatalf("nproc in the VM = %s after setting 1 CPU", n)
		}
		kb, _ := strconv.Atoi(e.vmShell(t, "awk '/MemTotal/ {print $2}' /proc/meminfo"))
		if kb < 1200<<10 || kb > 1536<<10 {
			t.Fatalf("MemTotal %d kB after setting 1536 MiB", kb)
		}
		// Swap and the VM's network are VM settings too.
		e.berthOK(t, "settings", "set", "resources.swapMiB", "256")
		if out := e.vmShell(t, "cat /proc/swaps"); !strings.Contains(out, "/var/lib/berth/swapfile") {
			t.Fatalf("/proc/swaps after setting 256 MiB of swap:\n%s", out)
		}
		e.berthOK(t, "settings", "set", "resources.vmSubnet", "192.168.77.0/24")
		if gw := e.vmShell(t, "ip route | awk '/^default/ {print $3}'"); gw != "192.168.77.2" {
			t.Fatalf("the VM's gateway on 192.168.77.0/24 is %q", gw)
		}
		// The engine came back with the settings' daemon.json.
		// (pid1 hands the engine its flags through a pipe, so ps shows
		// none: the engine's own report says what is in force.)
		daemonJSON := e.vmShell(t, "cat /var/lib/berth/daemon.json")
		var doc struct {
			Insecure []string `json:"insecure-registries"`
		}
		if err := json.Unmarshal([]byte(daemonJSON), &doc); err != nil || len(doc.Insecure) == 0 {
			t.Fatalf("daemon.json in the VM after the restart: %v\n%s", err, daemonJSON)
		}
		if info := e.mustDocker(t, "info", "--format", "{{json .RegistryConfig.IndexConfigs}}"); !strings.Contains(info, doc.Insecure[0]) {
			t.Fatalf("the engine after the restart does not have the insecure registry %s of daemon.json: %s", doc.Insecure[0], info)
		}
	})

	t.Run("share_added_becomes_mountable", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "f"), []byte("shared later\n"), 0o644)
		if out, err := e.docker("run", "--rm", "-v", dir+":/d", image, "cat", "/d/f"); err == nil || !strings.Contains(out, "Mounts denied") {
			t.Fatalf("bind of a folder not shared yet: %v\n%s", err, out)
		}
		e.berthOK(t, "settings", "share", "add", dir)
		if out := e.mustDocker(t, "run", "--rm", "-v", dir+":/d", image, "cat", "/d/f"); out != "shared later" {
			t.Fatalf("bind after sharing: %q", out)
		}
	})

	t.Run("host_file_events_reach_containers", func(t *testing.T) {
		proj := filepath.Join(e.home, "watched-project")
		watched := filepath.Join(proj, "src")
		if err := os.MkdirAll(watched, 0o755); err != nil {
			t.Fatal(err)
		}
		build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(proj, "inotifyprint"), "./e2e/testdata/inotifyprint")
		build.Dir = repoRoot(t)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build inotifyprint: %v\n%s", err, out)
		}
		e.mustDocker(t, "run", "-d", "--name", "watcher", "-v", proj+":/w", image, "/w/inotifyprint", "/w/src")
		defer e.docker("rm", "-f", "watcher")
		eventually(t, "the watcher in the container", func() error {
			if out, _ := e.docker("logs", "watcher"); !strings.Contains(out, "watching") {
				return fmt.Errorf("logs: %q", out)
			}
			return nil
		})
		// The host starts watching once the guest has seen the container
		// start; until the event shows, the host makes one more file.
		var seen string
		for i := 0; i < 40 && seen == ""; i++ {
			name := fmt.Sprintf("made-on-host-%d.txt", i)
			if err := os.WriteFile(filepath.Join(watched, name), []byte("hi\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			out, _ := e.docker("logs", "watcher")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "made-on-host-") {
					seen = line
				}
			}
		}
		if seen == "" {
			out, _ := e.docker("logs", "watcher")
			t.Fatalf("no inotify event in the container for files made on the host:\n%s", out)
		}
		t.Logf("the container saw: %s", seen)
		// A change to the file is an event again.
		out, _ := e.docker("logs", "watcher")
		before := strings.Count(out, "ATTRIB made-on-host-0.txt")
		os.WriteFile(filepath.Join(watched, "made-on-host-0.txt"), []byte("changed\n"), 0o644)
		eventually(t, "an event for a change", func() error {
			out, _ := e.docker("logs", "watcher")
			if strings.Count(out, "ATTRIB made-on-host-0.txt") <= before {
				return fmt.Errorf("logs:\n%s", out)
			}
			return nil
		})
	})

	t.Run("uninstall_leaves_nothing", func(t *testing.T) {
		out := e.berthOK(t, "uninstall", "--force")
		var left []string
		filepath.Walk(e.layout.Home, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Fatalf("files left under BERTH_HOME after uninstall: %q\n%s", left, out)
		}
		if ctxs := e.mustDocker(t, "context", "ls", "--format", "{{.Name}}"); strings.Contains(ctxs, "berth") {
			t.Fatalf("docker contexts after uninstall: %s", ctxs)
		}
	})
}
