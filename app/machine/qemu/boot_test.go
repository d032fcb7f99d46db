package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// repoRoot finds the module root from the test's folder.
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
			t.Fatal("no go.mod above the test folder")
		}
		dir = parent
	}
}

// imageDir is where `make vmimage` puts the host architecture's image;
// BERTH_VM_IMAGE_DIR points elsewhere.
func imageDir(t testing.TB) string {
	if d := os.Getenv("BERTH_VM_IMAGE_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(t), "build", "vm", runtime.GOARCH)
}

// findKernel returns the kernel of the image in dir, or "".
func findKernel(dir string) string {
	for _, name := range []string{"vmlinuz", "kernel", "Image"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// vmImage returns the kernel and initrd `make vmimage` built for the host's
// architecture, skipping the test when they are absent.
func vmImage(t testing.TB) (kernel, initrd string) {
	dir := imageDir(t)
	kernel = findKernel(dir)
	for _, name := range []string{"initrd", "initrd.img", "initramfs", "initrd.cpio.gz"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			initrd = filepath.Join(dir, name)
			break
		}
	}
	if kernel == "" || initrd == "" {
		t.Skipf("no VM image in %s (run make vmimage)", dir)
	}
	return kernel, initrd
}

func needQEMU(t testing.TB) {
	if _, err := exec.LookPath(binaryFor(machine.Arch(runtime.GOARCH))); err != nil {
		t.Skipf("%s not installed: %v", binaryFor(machine.Arch(runtime.GOARCH)), err)
	}
}

// busyboxInitrd writes an initrd whose /init is a busybox shell script:
// it prints a ready line on the console, then powers off at once
// (berthtest=poweroff on the kernel command line), panics (berthtest=panic)
// or waits.
func busyboxInitrd(t testing.TB) string {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox at /bin/busybox: %v", err)
	}
	script := `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
echo "berth-test ready" > /dev/console
case "$(/bin/busybox cat /proc/cmdline)" in
*berthtest=poweroff*) /bin/busybox poweroff -f ;;
*berthtest=panic*) exit 1 ;;
esac
while true; do /bin/busybox sleep 1000; done
`
	var buf bytes.Buffer
	w := cpioWriter{w: &buf}
	w.dir("bin")
	w.dir("dev")
	w.file("bin/busybox", 0o755, bb)
	w.file("init", 0o755, []byte(script))
	w.trailer()
	path := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cpioWriter writes the newc format the kernel unpacks.
type cpioWriter struct {
	w   io.Writer
	ino int
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	io.WriteString(c.w, hdr+name+"\x00")
	c.pad(len(hdr) + len(name) + 1)
	c.w.Write(data)
	c.pad(len(data))
}

func (c *cpioWriter) pad(n int) {
	if r := n % 4; r != 0 {
		c.w.Write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, 0o040755, nil) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, b) }
func (c *cpioWriter) trailer()                                { c.entry("TRAILER!!!", 0, nil) }

// testKernel returns a kernel for the busybox boots: the VM image's.
func testKernel(t testing.TB) string {
	k := findKernel(imageDir(t))
	if k == "" {
		t.Skipf("no kernel in %s (run make vmimage)", imageDir(t))
	}
	return k
}

func bootConfig(t testing.TB, kernel, initrd string, extra ...string) machine.Config {
	dir := t.TempDir()
	return machine.Config{
		Name:           "berth-test",
		CPUs:           1,
		MemoryMiB:      256,
		Disk:           machine.Disk{Path: filepath.Join(dir, "data.img"), SizeBytes: 64 << 20},
		Kernel:         kernel,
		Initrd:         initrd,
		Cmdline:        extra,
		ConsoleLogPath: filepath.Join(dir, "console.log"),
		StateDir:       filepath.Join(dir, "state"),
	}
}

func waitConsole(t *testing.T, path, want string, done <-chan struct{}) {
	deadline := time.After(3 * time.Minute)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		select {
		case <-done:
			t.Fatalf("vm ended before %q on the console:\n%s", want, b)
		case <-deadline:
			t.Fatalf("no %q on the console:\n%s", want, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopVM stops vm at the end of a test, with a deadline: a guest that
// does not power off when asked is quit, never waited for forever.
func stopVM(t testing.TB, vm machine.VM) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := vm.Stop(ctx); err != nil && !errors.Is(err, machine.ErrNotRunning) {
		t.Errorf("stop: %v", err)
	}
}

func requireRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the QEMU driver's tests open /dev/kvm and run virtiofsd")
	}
}

// TestBootLifecycle boots the busybox initrd, checks the state machine,
// a second Start, and a forced stop (busybox has no power-button handler).
func TestBootLifecycle(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	cfg := bootConfig(t, testKernel(t), busyboxInitrd(t))
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("accelerator %s", vm.Accelerator())
	if st := vm.State(); st != machine.StateRunning {
		t.Fatalf("state after Start %s", st)
	}
	if err := vm.Start(ctx); !errors.Is(err, machine.ErrAlreadyRunning) {
		t.Fatalf("second Start: %v, want ErrAlreadyRunning", err)
	}
	waitConsole(t, cfg.ConsoleLogPath, "berth-test ready", vm.Done())
	fi, err := os.Stat(cfg.Disk.Path)
	if err != nil || fi.Size() != cfg.Disk.SizeBytes {
		t.Fatalf("disk %v, %v; want %d bytes", fi, err, cfg.Disk.SizeBytes)
	}
	if fi, err := os.Stat(filepath.Join(cfg.StateDir, linkSocket)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("link socket %v, %v; want mode 0600", fi, err)
	}
	stopCtx, stopCancel := context.WithTimeout(ctx, 2*time.Second)
	defer stopCancel()
	if err := vm.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if st := vm.State(); st != machine.StateStopped {
		t.Fatalf("state after Stop %s", st)
	}
	if err := vm.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}
	if err := vm.Stop(ctx); !errors.Is(err, machine.ErrNotRunning) {
		t.Fatalf("Stop of a stopped VM: %v, want ErrNotRunning", err)
	}
}

// TestBootEndings: how the VM ended is told apart: a guest poweroff is a
// stop, a guest panic and a killed QEMU are crashes.
func TestBootEndings(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := testKernel(t), busyboxInitrd(t)
	tests := []struct {
		name      string
		cmdline   []string
		kill      bool
		wantState machine.State
	}{
		{"guest poweroff", []string{"berthtest=poweroff"}, false, machine.StateStopped},
		{"guest panic", []string{"berthtest=panic"}, false, machine.StateCrashed},
		{"qemu killed", nil, true, machine.StateCrashed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bootConfig(t, kernel, initrd, tc.cmdline...)
			vm, err := Driver{}.newVM(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := vm.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.kill {
				waitConsole(t, cfg.ConsoleLogPath, "berth-test ready", vm.Done())
				syscallKill(t, vm.PID())
			}
			select {
			case <-vm.Done():
			case <-ctx.Done():
				stopVM(t, vm)
				t.Fatal("vm did not end")
			}
			if st := vm.State(); st != tc.wantState {
				t.Fatalf("state %s, want %s (err %v)", st, tc.wantState, vm.Err())
			}
			if crashed := errors.Is(vm.Err(), machine.ErrCrashed); crashed != (tc.wantState == machine.StateCrashed) {
				t.Fatalf("Err %v for state %s", vm.Err(), tc.wantState)
			}
		})
	}
}

func syscallKill(t *testing.T, pid int) {
	p, err := os.FindProcess(pid)
	if err != nil || pid == 0 {
		t.Fatalf("find qemu pid %d: %v", pid, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
}

// TestBootAgent boots the real VM image and waits for the guest agent's
// control API over the channel, then stops the VM gracefully.
func TestBootAgent(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := vmImage(t)
	cfg := bootConfig(t, kernel, initrd)
	cfg.MemoryMiB = 1024
	cfg.CPUs = 2
	share := t.TempDir()
	cfg.Shares = []machine.Share{{Tag: "share0", HostPath: share, GuestPath: share}}
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopVM(t, vm)
	c := hostlink.NewClient(dialerFunc(vm.Dial))
	defer c.Close()
	st := waitAgent(t, ctx, vm, c, cfg.ConsoleLogPath)
	t.Logf("agent answered after %v (%s): %+v", time.Since(start), vm.Accelerator(), st)
	if st.State != "running" {
		t.Fatalf("status %+v", st)
	}
	stopCtx, stopCancel := context.WithTimeout(ctx, time.Minute)
	defer stopCancel()
	if err := vm.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if vm.State() != machine.StateStopped || vm.Err() != nil {
		t.Fatalf("after Stop: %s, %v", vm.State(), vm.Err())
	}
}

// waitAgent polls the guest's control API until it answers and returns its
// status; the test fails, with the console log, when the VM ends or ctx runs
// out first.
func waitAgent(t testing.TB, ctx context.Context, vm *VM, c *hostlink.Client, consoleLog string) hostlink.Status {
	t.Helper()
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := c.Status(actx)
		acancel()
		if err == nil {
			return st
		}
		select {
		case <-vm.Done():
			b, _ := os.ReadFile(consoleLog)
			t.Fatalf("vm ended before the agent answered: %v\n%s", vm.Err(), b)
		case <-ctx.Done():
			b, _ := os.ReadFile(consoleLog)
			t.Fatalf("agent did not answer: %v\n%s", err, b)
		default:
		}
	}
}

type dialerFunc func(ctx context.Context, port uint32) (net.Conn, error)

func (f dialerFunc) Dial(ctx context.Context, port uint32) (net.Conn, error) { return f(ctx, port) }

// TestBootLinkReconnect: a host end that goes away and comes back (another
// Berth process taking over a running VM) gets a new session from the real
// guest over the real virtio-serial port, more than once.
func TestBootLinkReconnect(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := vmImage(t)
	cfg := bootConfig(t, kernel, initrd)
	cfg.MemoryMiB = 512
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopVM(t, vm)
	if _, ok := vm.dialer.(*hostlink.SerialDialer); !ok {
		t.Skip("the VM uses vsock, not the serial link")
	}
	status := func(d hostlink.Dialer) error {
		c := hostlink.NewClient(d)
		defer c.Close()
		for {
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.Status(actx)
			acancel()
			if err == nil || ctx.Err() != nil {
				return err
			}
		}
	}
	if err := status(vm); err != nil {
		t.Fatal(err)
	}
	vm.dialer.(*hostlink.SerialDialer).Close()
	for i := range 2 {
		d := hostlink.NewSerial(filepath.Join(cfg.StateDir, linkSocket), nil)
		if err := status(d); err != nil {
			t.Fatalf("host end %d: %v", i+2, err)
		}
		d.Close()
	}
}

// TestBootAgentARM64 boots the arm64 image under qemu-system-aarch64 (TCG
// on this host) with the same driver and waits for the agent over the
// channel: the image Apple silicon Macs run.
func TestBootAgentARM64(t *testing.T) {
	requireRoot(t)
	if runtime.GOARCH == "arm64" {
		t.Skip("the host is arm64: TestBootAgent covers it")
	}
	if _, err := exec.LookPath(binaryFor(machine.ArchARM64)); err != nil {
		t.Skipf("%s not installed: %v", binaryFor(machine.ArchARM64), err)
	}
	dir := filepath.Join(repoRoot(t), "build", "vm", "arm64")
	kernel := findKernel(dir)
	initrd := filepath.Join(dir, "initrd.img")
	if _, err := os.Stat(initrd); kernel == "" || err != nil {
		t.Skipf("no arm64 VM image in %s (run make vmimage)", dir)
	}
	cfg := bootConfig(t, kernel, initrd)
	cfg.Arch = machine.ArchARM64
	cfg.MemoryMiB = 1024
	cfg.CPUs = 2
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		vm.Stop(sctx)
	}()
	c := hostlink.NewClient(vm)
	defer c.Close()
	st := waitAgent(t, ctx, vm, c, cfg.ConsoleLogPath)
	t.Logf("arm64 agent answered after %v: %+v", time.Since(start), st)
}
