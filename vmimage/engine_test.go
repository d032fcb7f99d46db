package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBootEngineAmd64(t *testing.T) { testBootEngine(t, "amd64") }
func TestBootEngineArm64(t *testing.T) { testBootEngine(t, "arm64") }

// testBootEngine boots the image as built, with the real engine, and drives
// it with the docker CLI through a unix socket spliced to the channel's
// Docker API port, as the host's forwarder does: version, an image imported
// from a busybox tar, and a container run with its output.
func testBootEngine(t *testing.T, arch string) {
	requireBuildTools(t)
	requireQEMU(t, arch)
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not installed")
	}
	out := buildImage(t, arch)
	busybox := busyboxTar(t, arch)
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	v := bootVM(t, arch, filepath.Join(out, arch, "vmlinuz"), filepath.Join(out, arch, "initrd.img"), disk, "")
	ready := v.waitConsole(t, "berth: agent ready", 3*time.Minute)
	t.Logf("%s with the engine: ready line %v after QEMU start", arch, ready.Round(time.Millisecond))
	l := dialLink(t, v.link)
	sock := forwardDocker(t, l)

	docker := func(stdin io.Reader, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, dockerCLI, append([]string{"-H", "unix://" + sock}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		cmd.Stdin = stdin
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			console, _ := os.ReadFile(v.console)
			t.Fatalf("docker %s: %v: %s\nconsole:\n%s", strings.Join(args, " "), err, stderr.String(), console)
		}
		return strings.TrimSpace(string(b))
	}
	if got := docker(nil, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"); got != "linux/"+arch {
		t.Fatalf("server platform %q", got)
	}
	docker(bytes.NewReader(busybox), "import", "-", "berth-test/busybox:1")
	if got := docker(nil, "run", "--rm", "berth-test/busybox:1", "/bin/busybox", "echo", "hello from the guest"); got != "hello from the guest" {
		t.Fatalf("container output %q", got)
	}
	resp, err := l.client(1024).Post("http://guest/shutdown", "application/json", nil)
	if err != nil {
		t.Fatalf("POST /shutdown: %v", err)
	}
	resp.Body.Close()
	v.waitExit(t, 2*time.Minute)
	fsckClean(t, disk)
}

// busyboxTar is a root filesystem tar holding Debian's static busybox for
// arch.
func busyboxTar(t *testing.T, arch string) []byte {
	t.Helper()
	root := repoRoot(t)
	cache := filepath.Join(root, "build", "vm", "cache", arch)
	ctx := context.Background()
	pkg, err := fetchPackage(ctx, cache, "busybox-static", arch)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := extractPackage(ctx, filepath.Join(cache, pkg.File), dir); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// forwardDocker listens on a unix socket and splices each connection to
// the guest's Docker API port, half-closes included.
func forwardDocker(t *testing.T, l *hostLink) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				g, err := l.dial(2375)
				if err != nil {
					return
				}
				defer g.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(c, g)
					c.(*net.UnixConn).CloseWrite()
					close(done)
				}()
				io.Copy(g, c)
				g.Close() // a yamux stream's Close is a half-close
				<-done
			}()
		}
	}()
	return sock
}
