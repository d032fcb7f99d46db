package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/forward"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// TestBootDataSurvives: an image loaded into the VM is there after a
// graceful stop and start, and after QEMU is killed hard (a crash the VM
// reports) and started again on the same disk.
func TestBootDataSurvives(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("docker CLI not installed: %v", err)
	}
	kernel, initrd := vmImage(t)
	cfg := bootConfig(t, kernel, initrd)
	cfg.MemoryMiB = 1024
	cfg.Disk.SizeBytes = 2 << 30
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ds, err := forward.ListenDocker(sock, vm, nil)
	if err != nil {
		t.Fatal(err)
	}
	go ds.Serve()
	defer ds.Close()
	docker := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, dockerBin, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	boot := func() {
		t.Helper()
		if err := vm.Start(ctx); err != nil {
			t.Fatal(err)
		}
		c := hostlink.NewClient(vm)
		defer c.Close()
		if _, err := c.WaitReady(ctx, nil); err != nil {
			b, _ := os.ReadFile(cfg.ConsoleLogPath)
			t.Fatalf("engine not ready: %v\n%s", err, b)
		}
	}
	hasImage := func(when string) {
		t.Helper()
		out, err := docker("image", "inspect", "--format", "{{.RepoTags}}", "berthtest/keep:1")
		if err != nil || !strings.Contains(out, "berthtest/keep:1") {
			t.Fatalf("%s: image gone: %v\n%s", when, err, out)
		}
	}
	defer func() {
		if vm.State() == machine.StateRunning {
			stopNow(vm)
		}
	}()

	boot()
	if out, err := docker("load", "-i", busyboxImageTar(t, "berthtest/keep:1", "kept\n")); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	err = vm.Stop(sctx)
	scancel()
	if err != nil || vm.State() != machine.StateStopped {
		t.Fatalf("graceful stop: %v, %s", err, vm.State())
	}

	boot()
	hasImage("after stop and start")
	if err := syscallKillPID(vm.PID()); err != nil {
		t.Fatal(err)
	}
	<-vm.Done()
	if vm.State() != machine.StateCrashed || !errors.Is(vm.Err(), machine.ErrCrashed) {
		t.Fatalf("after kill: %s, %v", vm.State(), vm.Err())
	}

	boot()
	hasImage("after a hard kill")
}

func syscallKillPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
