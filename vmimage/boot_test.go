package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// The boot tests build the real image, boot it under QEMU (TCG) and talk to
// the guest over the virtio-serial channel as the host does. They need root
// (apt-get download into the cache, dpkg --add-architecture), QEMU and the
// Debian build tools; otherwise they skip and say why.

const standinPath = "usr/libexec/berth/standin-engine"

var (
	imagesMu sync.Mutex
	images   = map[string]string{} // arch -> out dir of a built image
	imageDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vmimage-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	imageDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// requireBuildTools skips unless an image can be built here.
func requireBuildTools(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("image builds are long; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("building the image needs root (apt-get download cache, dpkg --add-architecture)")
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "depmod", "modprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("building the image needs %s (apt-get install kmod dpkg apt)", tool)
		}
	}
}

func qemuBinary(arch string) string {
	if arch == "arm64" {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

func requireQEMU(t testing.TB, arch string) {
	t.Helper()
	if _, err := exec.LookPath(qemuBinary(arch)); err != nil {
		t.Skipf("%s is not installed (apt-get install qemu-system-x86 qemu-system-arm)", qemuBinary(arch))
	}
}

// buildImage builds the image of arch once per test binary.
func buildImage(t testing.TB, arch string) string {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	if dir, ok := images[arch]; ok {
		return dir
	}
	out := filepath.Join(imageDir, "a")
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := Build(ctx, Config{Arch: arch, RepoRoot: root, OutDir: out,
		CacheDir: filepath.Join(root, "build", "vm", "cache"), Version: "test"}); err != nil {
		t.Fatalf("build %s image: %v", arch, err)
	}
	images[arch] = out
	return out
}

// testInitrd returns the built initrd with a second archive appended that
// adds the stand-in engine (the kernel unpacks concatenated archives).
func testInitrd(t testing.TB, arch, imageOut string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "standin-engine")
	if err := goCommand(context.Background(), repoRoot(t), arch, "build", "-trimpath", "-o", bin, "./vmimage/testdata/standin-engine"); err != nil {
		t.Fatal(err)
	}
	a := NewArchive()
	if err := a.Add(Entry{Path: standinPath, Mode: modeFile | 0o755, Source: bin}); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join(imageOut, arch, "initrd.img"))
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.NewBuffer(base)
	if err := a.WriteTo(buf, 0); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "initrd-test.img")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// vm is one QEMU process.
type vm struct {
	cmd     *exec.Cmd
	console string
	link    string
	monitor string
	start   time.Time
	done    chan error
}

func bootVM(t testing.TB, arch, kernel, initrd, disk, extraAppend string) *vm {
	t.Helper()
	dir, err := os.MkdirTemp("", "vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &vm{console: filepath.Join(dir, "console.log"), link: filepath.Join(dir, "link.sock"),
		monitor: filepath.Join(dir, "mon.sock"), done: make(chan error, 1)}
	console := "ttyS0"
	args := []string{"-accel", "tcg", "-M", "q35", "-cpu", "max"}
	if arch == "arm64" {
		console = "ttyAMA0"
		args = []string{"-accel", "tcg", "-M", "virt", "-cpu", "cortex-a57"}
	}
	args = append(args, "-smp", "2", "-m", "1024", "-nodefaults", "-no-reboot", "-display", "none",
		"-serial", "file:"+v.console, "-kernel", kernel, "-initrd", initrd,
		"-append", "console="+console+" quiet panic=-1 "+extraAppend,
		"-monitor", "unix:"+v.monitor+",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=c0,path="+v.link+",server=on,wait=off",
		"-device", "virtserialport,chardev=c0,name=berth.link",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	if disk != "" {
		args = append(args, "-drive", "file="+disk+",format=raw,if=none,id=d0,cache=none,aio=threads,discard=unmap",
			"-device", "virtio-blk-pci,drive=d0")
	}
	v.cmd = exec.Command(qemuBinary(arch), args...)
	var stderr bytes.Buffer
	v.cmd.Stderr = &stderr
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() {
		err := v.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		v.done <- err
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(v.console)
			t.Logf("console of the failed VM:\n%s", b)
		}
		if v.cmd.ProcessState == nil {
			v.cmd.Process.Kill()
			<-v.done
		}
	})
	return v
}

// waitConsole waits for s on the console and returns the time since QEMU
// started.
func (v *vm) waitConsole(t testing.TB, s string, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(v.console); bytes.Contains(b, []byte(s)) {
			return time.Since(v.start)
		}
		select {
		case err := <-v.done:
			b, _ := os.ReadFile(v.console)
			t.Fatalf("qemu exited (%v) before %q; console:\n%s", err, s, b)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(v.console)
	t.Fatalf("no %q on the console within %v; console:\n%s", s, timeout, b)
	return 0
}

func (v *vm) waitExit(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-v.done:
		if err != nil {
			t.Fatalf("qemu: %v", err)
		}
	case <-time.After(timeout):
		b, _ := os.ReadFile(v.console)
		t.Fatalf("the VM did not power off within %v; console:\n%s", timeout, b)
	}
}

// monitorCommand sends one human monitor command.
func (v *vm) monitorCommand(t testing.TB, cmd string) {
	t.Helper()
	c, err := net.Dial("unix", v.monitor)
	if err != nil {
		t.Fatalf("dial monitor: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatalf("monitor %s: %v", cmd, err)
	}
	// Let the monitor read the line before the connection closes.
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil || strings.Contains(line, cmd) {
			return
		}
	}
}

// hostLink is the host end of transport B, as the tests need it.
type hostLink struct {
	conn net.Conn
	sess *yamux.Session
}

func dialLink(t testing.TB, sock string) *hostLink {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial link socket: %v", err)
	}
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = true
	cfg.LogOutput = io.Discard
	sess, err := yamux.Client(c, cfg)
	if err != nil {
		t.Fatalf("yamux client: %v", err)
	}
	// A ping answered first, as the host end does: the last frames the guest
	// wrote as a previous host left may still be queued for this one, and
	// must reach it before any stream of its own is open. As the host end
	// (hostlink.SerialDialer), a new ping leaves every half second until one
	// is answered.
	answered := make(chan error, 1)
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		go func() {
			if _, err := sess.Ping(); err == nil {
				select {
				case answered <- nil:
				default:
				}
			}
		}()
		select {
		case <-answered:
			done = true
		case <-tick.C:
		case <-deadline:
			t.Fatal("ping the guest over the link: no answer within 30s")
		}
	}
	l := &hostLink{conn: c, sess: sess}
	t.Cleanup(func() { sess.Close() })
	return l
}

func (l *hostLink) dial(port uint32) (net.Conn, error) {
	st, err := l.sess.Open()
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(st, "%d\n", port); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func (l *hostLink) client(port uint32) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return l.dial(port)
		}}}
}

func getJSON(t testing.TB, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

func getText(t testing.TB, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

// fsckClean checks the data disk is a consistent, cleanly unmounted ext4.
func fsckClean(t testing.TB, disk string) {
	t.Helper()
	if _, err := exec.LookPath("e2fsck"); err != nil {
		t.Log("e2fsck missing; filesystem check skipped")
		return
	}
	out, err := exec.Command("e2fsck", "-f", "-n", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck of the data disk after shutdown: %v\n%s", err, out)
	}
}

type diskUsage struct {
	DataRoot   string `json:"dataRoot"`
	TotalBytes uint64 `json:"totalBytes"`
	UsedBytes  uint64 `json:"usedBytes"`
	FreeBytes  uint64 `json:"freeBytes"`
}

type status struct {
	State    string            `json:"state"`
	Engine   string            `json:"engine"`
	Versions map[string]string `json:"versions"`
	Uptime   float64           `json:"uptimeSeconds"`
}

func TestBootAmd64(t *testing.T) { testBoot(t, "amd64") }
func TestBootArm64(t *testing.T) { testBoot(t, "arm64") }

// testBoot boots the image twice on one data disk: the first boot makes the
// filesystem, the second (after the disk file grew) finds the data kept and
// the filesystem grown.
func testBoot(t *testing.T, arch string) {
	requireBuildTools(t)
	requireQEMU(t, arch)
	out := buildImage(t, arch)
	initrd := testInitrd(t, arch, out)
	kernel := filepath.Join(out, arch, "vmlinuz")
	disk := filepath.Join(t.TempDir(), "data.img")
	if err := os.Truncate(disk, 0); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if f, err := os.Create(disk); err == nil {
		f.Close()
	}
	if err := os.Truncate(disk, 512<<20); err != nil {
		t.Fatal(err)
	}
	params := fmt.Sprintf("berth.engine=/%s berth.time=%d berth.debug", standinPath, time.Now().Unix())
	timeout := 3 * time.Minute

	// First boot: the filesystem is made.
	v := bootVM(t, arch, kernel, initrd, disk, params)
	ready := v.waitConsole(t, "berth: agent ready", timeout)
	t.Logf("%s first boot (mkfs): ready line %v after QEMU start", arch, ready.Round(time.Millisecond))
	l := dialLink(t, v.link)
	ctl := l.client(1024)
	var st status
	getJSON(t, ctl, "http://guest/status", &st)
	if st.State != "running" || st.Engine != "ready" || st.Versions["kernel"] == "" || st.Versions["agent"] != "test" {
		t.Fatalf("status = %+v", st)
	}
	// The host end goes away and comes back: the guest starts a new session.
	l.sess.Close()
	l.conn.Close()
	l = dialLink(t, v.link)
	ctl = l.client(1024)
	getJSON(t, ctl, "http://guest/status", &st)
	if st.State != "running" {
		t.Fatalf("status after reconnecting = %+v", st)
	}
	// The clock follows the host.
	want := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	resp, err := ctl.Post("http://guest/time", "application/json", strings.NewReader(fmt.Sprintf(`{"unixNano":%d}`, want.UnixNano())))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /time: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := getText(t, l.client(2375), "http://engine/time"); !strings.HasPrefix(got, "2031-05-06") {
		t.Fatalf("guest clock after POST /time = %s", got)
	}
	// The event stream opens.
	evResp, err := ctl.Get("http://guest/events")
	if err != nil || evResp.StatusCode != http.StatusOK || evResp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET /events: %v %v", evResp, err)
	}
	evResp.Body.Close()
	var du1 diskUsage
	getJSON(t, ctl, "http://guest/disk", &du1)
	if du1.DataRoot != "/var/lib/berth" || du1.TotalBytes < 400<<20 || du1.TotalBytes > 512<<20 {
		t.Fatalf("disk = %+v, want an ext4 of about 512 MiB at /var/lib/berth", du1)
	}
	if got := getText(t, l.client(2375), "http://engine/boots"); got != "1" {
		t.Fatalf("engine boots = %q, want 1", got)
	}
	// The root pid1 switched to lets a container runtime pivot_root.
	if got := getText(t, l.client(2375), "http://engine/pivot"); got != "OK" {
		t.Fatalf("pivot_root in the guest: %q", got)
	}
	resp, err = ctl.Post("http://guest/shutdown", "application/json", nil)
	if err != nil {
		t.Fatalf("POST /shutdown: %v", err)
	}
	resp.Body.Close()
	v.waitExit(t, time.Minute)
	fsckClean(t, disk)

	// The disk file grows while the VM is off.
	if err := os.Truncate(disk, 1<<30); err != nil {
		t.Fatal(err)
	}

	// Second boot: data kept, filesystem grown online.
	v = bootVM(t, arch, kernel, initrd, disk, params)
	ready = v.waitConsole(t, "berth: agent ready", timeout)
	t.Logf("%s second boot: ready line %v after QEMU start", arch, ready.Round(time.Millisecond))
	l = dialLink(t, v.link)
	if got := getText(t, l.client(2375), "http://engine/boots"); got != "2" {
		t.Fatalf("engine boots after reboot = %q, want 2 (data kept)", got)
	}
	var du2 diskUsage
	getJSON(t, l.client(1024), "http://guest/disk", &du2)
	if du2.TotalBytes <= du1.TotalBytes+256<<20 {
		t.Fatalf("disk after growing the file = %+v, before %+v", du2, du1)
	}
	if arch == "amd64" {
		// The ACPI power button, as `system_powerdown` presses it.
		v.monitorCommand(t, "system_powerdown")
	} else {
		resp, err := l.client(1024).Post("http://guest/shutdown", "application/json", nil)
		if err != nil {
			t.Fatalf("POST /shutdown: %v", err)
		}
		resp.Body.Close()
	}
	v.waitExit(t, time.Minute)
	fsckClean(t, disk)
}
