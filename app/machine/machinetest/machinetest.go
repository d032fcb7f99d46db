// Package machinetest owns the conformance suite of the machine contract
// (app/machine's VM), written once and run by every hypervisor driver
// against the real VM image: start, a Dial of each channel port (Docker
// API, control, tunnel, shell, file events), a shared folder seen from both
// sides, a restart that keeps the data disk's data, and stop, with the
// state machine and sentinel errors checked along the way. Where the
// guest's network reaches the host it also runs the channel suite
// (app/hostlink/linktest) end to end through the guest's tunnel port.
//
// A driver's test supplies only hooks (Driver): the suite prepares the
// machine.Config (folders, data disk, share, console log), the driver's New
// turns it into a machine.VM, and from then on the suite drives that VM
// through the machine.VM interface and the guest agent's ports alone, so
// the same checks hold for QEMU, vz and Hyper-V. Every check needs nothing
// from the guest but the VM image itself: its busybox serves what the
// tunnel check dials.
package machinetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/hostlink/linktest"
	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/hostshare"
)

// Driver is what a hypervisor driver's test gives the suite.
type Driver struct {
	// Name names the driver in messages ("qemu", "vz", "hyperv").
	Name string
	// Kernel and Initrd are the VM image's boot files (Image finds the
	// ones `make vmimage` built).
	Kernel, Initrd string
	// Arch is the image's architecture; empty means the host's.
	Arch machine.Arch
	// New builds the VM under test from cfg, which the suite prepared, as
	// machine.Hypervisor.New does: validated and stopped.
	New func(t testing.TB, cfg machine.Config) (machine.VM, error)
	// Configure, when set, adjusts the prepared Config before New (more
	// memory, a larger disk, a driver's own needs).
	Configure func(cfg *machine.Config)
	// HostListen, when set, opens a TCP listener on the host that the
	// guest's network reaches and returns it with the host name or address
	// the guest dials it by (under QEMU's user network: a loopback
	// listener, reached from the guest at 10.0.2.2). With it the channel
	// suite runs through the guest's tunnel port against services on the
	// host; without it that part is skipped, saying why.
	HostListen func(t testing.TB) (ln net.Listener, guestHost string)
	// BootTimeout bounds each boot up to the guest engine's readiness; 5
	// minutes when 0, for emulated CPUs.
	BootTimeout time.Duration
	// StopTimeout bounds the guest's own power-off after Stop asks for it;
	// 1 minute when 0. A guest still running then fails the check (Stop
	// then ends it by force, as the contract says).
	StopTimeout time.Duration
}

// Defaults of the Config the suite prepares: small, as the checks need
// little and a boot under emulation is slow enough.
const (
	defaultCPUs      = 1
	defaultMemoryMiB = 512
	defaultDiskBytes = 64 << 20
	shareTag         = "share0"
	// guestHTTPPort is where the guest's busybox httpd listens, on its
	// loopback, for the tunnel check.
	guestHTTPPort = 8123
)

// suite is the state the checks share: one VM for all of them, as each
// boot costs seconds (tens of seconds under emulation).
type suite struct {
	d     Driver
	cfg   machine.Config
	vm    machine.VM
	share string // the shared folder on the host

	mu       sync.Mutex
	marker   string // written to the data disk; "" until then
	dataRoot string // where the guest mounts the data disk
	restarts int    // boots after the first
}

// Run runs the suite against one VM built by d.New. The checks run in
// order and share the VM: each relies on what the earlier ones left (the
// VM running, the marker on the data disk). The channel suite's checks of
// reconnection stop and start the VM; those restarts are the suite's own
// (state checked, data disk checked), so the restart check only restarts
// the VM itself when none happened before it.
func Run(t *testing.T, d Driver) {
	if d.New == nil || d.Kernel == "" {
		t.Fatal("machinetest: Driver needs New and Kernel")
	}
	if d.Name == "" {
		d.Name = "driver"
	}
	if d.BootTimeout == 0 {
		d.BootTimeout = 5 * time.Minute
	}
	if d.StopTimeout == 0 {
		d.StopTimeout = time.Minute
	}
	s := setup(t, d)
	if !t.Run("start", s.testStart) {
		t.Fatal("the VM did not start; the other checks need it")
	}
	t.Run("ports", s.testPorts)
	t.Run("share", s.testShare)
	t.Run("data disk", s.testDataWrite)
	t.Run("channel", s.testChannel)
	t.Run("restart keeps data", s.testRestart)
	t.Run("stop", s.testStop)
}

// setup prepares the Config and builds the VM.
func setup(t *testing.T, d Driver) *suite {
	dir := t.TempDir()
	// Unix socket paths are short (about 100 bytes): the state folder
	// gets its own short name rather than one under the test's.
	state, err := os.MkdirTemp("", "berth-mt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	share := filepath.Join(dir, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := machine.Config{
		Name:           "berth-conformance",
		CPUs:           defaultCPUs,
		MemoryMiB:      defaultMemoryMiB,
		Disk:           machine.Disk{Path: filepath.Join(dir, "data.img"), SizeBytes: defaultDiskBytes},
		Shares:         []machine.Share{{Tag: shareTag, HostPath: share, GuestPath: hostshare.VMPath(runtime.GOOS, share)}},
		Kernel:         d.Kernel,
		Initrd:         d.Initrd,
		ConsoleLogPath: filepath.Join(dir, "console.log"),
		StateDir:       state,
		Arch:           d.Arch,
	}
	if d.Configure != nil {
		d.Configure(&cfg)
	}
	vm, err := d.New(t, cfg)
	if err != nil {
		t.Fatalf("%s: new VM: %v", d.Name, err)
	}
	s := &suite{d: d, cfg: cfg, vm: vm, share: share}
	t.Cleanup(s.forceStop)
	return s
}

// forceStop ends a VM a failed check left running: a Stop whose context
// has already ended stops it by force.
func (s *suite) forceStop() {
	switch s.vm.State() {
	case machine.StateStopped, machine.StateCrashed:
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.vm.Stop(ctx)
}

// console returns the end of the guest's console log, for failures.
func (s *suite) console() string {
	b, _ := os.ReadFile(s.cfg.ConsoleLogPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// boot starts the stopped VM and waits, through the control API, for the
// guest engine to be ready, as `berth start` does: the guest is then fully
// up (a stop asked for while it still boots may find no one to hear it).
func (s *suite) boot() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.d.BootTimeout)
	defer cancel()
	began := time.Now()
	if err := s.vm.Start(ctx); err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	if st := s.vm.State(); st != machine.StateRunning {
		return 0, fmt.Errorf("state after Start is %s, want %s", st, machine.StateRunning)
	}
	// Stop waiting when the VM ends: the console then tells why.
	ctx, stopWait := context.WithCancelCause(ctx)
	defer stopWait(nil)
	done := s.vm.Done()
	go func() {
		select {
		case <-done:
			stopWait(fmt.Errorf("the VM ended (%s): %w", s.vm.State(), s.vm.Err()))
		case <-ctx.Done():
		}
	}()
	c := hostlink.NewClient(s.vm)
	defer c.Close()
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.WaitReady(actx, nil)
		acancel()
		if err == nil {
			return time.Since(began), nil
		}
		if errors.Is(err, hostlink.ErrEngineFailed) {
			return 0, fmt.Errorf("guest agent: %w\n%s", err, s.console())
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("no answer from the guest agent: %w (last: %w)\n%s", context.Cause(ctx), err, s.console())
		}
	}
}

// halt stops the running VM, checks that the guest powered off when asked
// (not by force once StopTimeout ran out), and what the contract promises
// once Stop returns.
func (s *suite) halt() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.d.StopTimeout)
	defer cancel()
	if err := s.vm.Stop(ctx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("the guest did not power off within %v of Stop's request, and was stopped by force; its console:\n%s", s.d.StopTimeout, s.console())
	}
	select {
	case <-s.vm.Done():
	default:
		return errors.New("Done is still open after Stop returned")
	}
	if st := s.vm.State(); st != machine.StateStopped {
		return fmt.Errorf("state after Stop is %s, want %s (Err %v)", st, machine.StateStopped, s.vm.Err())
	}
	if err := s.vm.Err(); err != nil {
		return fmt.Errorf("Err after an asked-for stop: %w", err)
	}
	return nil
}

// restart stops and starts the VM, then checks that the marker, once
// written, is still on the data disk.
func (s *suite) restart() error {
	if err := s.halt(); err != nil {
		return err
	}
	if _, err := s.boot(); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	s.mu.Lock()
	s.restarts++
	s.mu.Unlock()
	return s.checkMarker()
}

func (s *suite) testStart(t *testing.T) {
	if st := s.vm.State(); st != machine.StateStopped {
		t.Fatalf("state of a new VM is %s, want %s", st, machine.StateStopped)
	}
	took, err := s.boot()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: the guest engine answered %v after Start", s.d.Name, took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.vm.Start(ctx); !errors.Is(err, machine.ErrAlreadyRunning) {
		t.Fatalf("Start of a running VM: %v, want ErrAlreadyRunning", err)
	}
	select {
	case <-s.vm.Done():
		t.Fatalf("Done is closed while the VM runs (Err %v)", s.vm.Err())
	default:
	}
	if err := s.vm.Err(); err != nil {
		t.Fatalf("Err of a running VM: %v", err)
	}
}

// testPorts dials each of the guest agent's ports and checks that the
// service the channel contract names answers there.
func (s *suite) testPorts(t *testing.T) {
	t.Run("control", func(t *testing.T) {
		ctx := checkCtx(t)
		c := hostlink.NewClient(s.vm)
		defer c.Close()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != "running" || st.Versions.Kernel == "" {
			t.Fatalf("status %+v", st)
		}
		disk, err := c.Disk(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if disk.DataRoot == "" || disk.TotalBytes == 0 || disk.TotalBytes > uint64(s.cfg.Disk.SizeBytes) {
			t.Fatalf("disk %+v of a %d-byte data disk", disk, s.cfg.Disk.SizeBytes)
		}
		s.mu.Lock()
		s.dataRoot = disk.DataRoot
		s.mu.Unlock()
	})
	t.Run("docker", func(t *testing.T) {
		conn, err := s.vm.Dial(checkCtx(t), machine.PortDocker)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		req, _ := http.NewRequest(http.MethodGet, "http://docker/_ping", nil)
		req.Close = true
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode != http.StatusOK || string(body) != "OK" {
			t.Fatalf("GET /_ping: %s %q", resp.Status, body)
		}
	})
	t.Run("shell", func(t *testing.T) {
		out, code, err := s.sh(t, "echo conformance; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		if out != "conformance\n" || code != 3 {
			t.Fatalf("shell: %q, exit %d; want \"conformance\\n\", exit 3", out, code)
		}
	})
	t.Run("tunnel", func(t *testing.T) {
		// The guest's busybox serves a page on the guest's loopback;
		// the tunnel reaches it as it reaches a container's port.
		token := randomToken()
		script := fmt.Sprintf("d=$(mktemp -d) && printf %%s %s > $d/index.html && /bin/busybox httpd -p 127.0.0.1:%d -h $d", token, guestHTTPPort)
		if out, code, err := s.sh(t, script); err != nil || code != 0 {
			t.Fatalf("start httpd in the guest: %q, exit %d, %v", out, code, err)
		}
		ctx := checkCtx(t)
		var last error
		for ctx.Err() == nil {
			body, err := s.tunnelGet(ctx, fmt.Sprintf("127.0.0.1:%d", guestHTTPPort))
			if err == nil {
				if body != token {
					t.Fatalf("page through the tunnel %q, want %q", body, token)
				}
				return
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("no page through the tunnel: %v", last)
	})
	t.Run("file events", func(t *testing.T) {
		conn, err := s.vm.Dial(checkCtx(t), machine.PortFileEvents)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		line, err := bufio.NewReader(conn).ReadBytes('\n')
		if err != nil {
			t.Fatalf("the guest sent no watch set: %v", err)
		}
		if _, err := hostshare.ParseWatchRequest(bytes.TrimSpace(line)); err != nil {
			t.Fatal(err)
		}
	})
}

// tunnelGet fetches / from addr in the guest through the tunnel port.
func (s *suite) tunnelGet(ctx context.Context, addr string) (string, error) {
	conn, err := s.vm.Dial(ctx, machine.PortTunnel)
	if err != nil {
		return "", fmt.Errorf("dial the tunnel: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, "tcp "+addr+"\n"); err != nil {
		return "", fmt.Errorf("tunnel header: %w", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", fmt.Errorf("response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", fmt.Errorf("response body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /: %s", resp.Status)
	}
	return string(body), nil
}

// testShare: a file the host writes in the shared folder is read in the
// guest at the share's guest path, and one the guest writes there is read
// on the host.
func (s *suite) testShare(t *testing.T) {
	guest := s.cfg.Shares[0].GuestPath
	token := randomToken()
	if err := os.WriteFile(filepath.Join(s.share, "from-host"), []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code, err := s.sh(t, "cat "+shellQuote(guest+"/from-host"))
	if err != nil || code != 0 || out != token {
		t.Fatalf("the guest read %q (exit %d, %v) from the share, want %q", out, code, err, token)
	}
	token = randomToken()
	if out, code, err := s.sh(t, "printf %s "+token+" > "+shellQuote(guest+"/from-guest")); err != nil || code != 0 {
		t.Fatalf("the guest could not write to the share: %q, exit %d, %v", out, code, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(s.share, "from-guest"))
		if err == nil && string(b) == token {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host read %q (%v) of the guest's file, want %q", b, err, token)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testDataWrite writes the marker the restarts look for on the data disk.
func (s *suite) testDataWrite(t *testing.T) {
	s.mu.Lock()
	root := s.dataRoot
	s.mu.Unlock()
	if root == "" {
		t.Fatal("the control API named no data root (see ports/control)")
	}
	token := randomToken()
	file := shellQuote(root + "/machinetest-marker")
	if out, code, err := s.sh(t, "printf %s "+token+" > "+file+" && sync && cat "+file); err != nil || code != 0 || out != token {
		t.Fatalf("write the marker: %q, exit %d, %v", out, code, err)
	}
	s.mu.Lock()
	s.marker = token
	s.mu.Unlock()
}

// checkMarker reads the marker back from the data disk, once written.
func (s *suite) checkMarker() error {
	s.mu.Lock()
	token, root := s.marker, s.dataRoot
	s.mu.Unlock()
	if token == "" {
		return nil
	}
	out, code, err := s.sh(nil, "cat "+shellQuote(root+"/machinetest-marker"))
	if err != nil {
		return fmt.Errorf("read the marker: %w", err)
	}
	if code != 0 || out != token {
		return fmt.Errorf("the data disk lost its data: marker %q (exit %d), want %q", out, code, token)
	}
	return nil
}

// testChannel runs the channel suite through the real guest: each of
// linktest's services runs on the host, and each Dial opens the guest's
// tunnel port naming it as the guest reaches it, so every byte crosses the
// driver's channel and the guest agent.
func (s *suite) testChannel(t *testing.T) {
	if s.d.HostListen == nil {
		t.Skipf("%s: no HostListen hook (the guest's network does not reach a listener on this host), so the channel suite does not run through the tunnel", s.d.Name)
	}
	d := &tunnelDialer{vm: s.vm, ports: map[uint32]int{}}
	for port, serve := range linktest.Services() {
		ln, host := s.d.HostListen(t)
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serve(c)
			}
		}()
		d.host = host
		d.ports[port] = ln.Addr().(*net.TCPAddr).Port
	}
	// A port nothing listens on any longer, for linktest's unknown port.
	ln, _ := s.d.HostListen(t)
	d.none = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	linktest.Run(t, linktest.Transport{Name: s.d.Name, Shared: true, Setup: func(tb testing.TB) (hostlink.Dialer, linktest.GuestEnd) {
		// The guest end's restarts are the suite's own, state and data
		// disk checked. They run inside linktest's checks, so they
		// report with Errorf, which any goroutine may call.
		return d, linktest.GuestEnd{
			Stop: func() {
				if err := s.halt(); err != nil {
					tb.Errorf("%s: guest end stop: %v", s.d.Name, err)
				}
			},
			Start: func() {
				if _, err := s.boot(); err != nil {
					tb.Errorf("%s: guest end start: %v", s.d.Name, err)
					return
				}
				s.mu.Lock()
				s.restarts++
				s.mu.Unlock()
				if err := s.checkMarker(); err != nil {
					tb.Errorf("%s: after a restart: %v", s.d.Name, err)
				}
			},
		}
	}})
}

// tunnelDialer reaches services on the host through the guest's tunnel
// port, naming each as the guest reaches it.
type tunnelDialer struct {
	vm    machine.VM
	host  string         // the host as the guest reaches it
	ports map[uint32]int // suite port -> host port
	none  int            // a host port nothing listens on
}

func (d *tunnelDialer) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	hostPort, ok := d.ports[port]
	if !ok {
		hostPort = d.none
	}
	for {
		c, err := d.vm.Dial(ctx, machine.PortTunnel)
		if err == nil {
			if _, err := io.WriteString(c, "tcp "+net.JoinHostPort(d.host, strconv.Itoa(hostPort))+"\n"); err != nil {
				c.Close()
				return nil, fmt.Errorf("tunnel header: %w", err)
			}
			return c, nil
		}
		// While the VM restarts, wait for it, as a dialer waits for
		// its guest end.
		if !errors.Is(err, machine.ErrNotRunning) && !errors.Is(err, hostlink.ErrClosed) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// testRestart: after a stop and a start the data disk still holds the
// marker. The channel suite's restarts count (each checked the marker);
// without one, this check restarts the VM itself.
func (s *suite) testRestart(t *testing.T) {
	s.mu.Lock()
	restarts := s.restarts
	s.mu.Unlock()
	if s.vm.State() != machine.StateRunning {
		t.Fatalf("the VM is %s before the restart check (Err %v)", s.vm.State(), s.vm.Err())
	}
	if restarts == 0 {
		if err := s.restart(); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Logf("%s: %d restarts in the channel suite kept the data; checking once more", s.d.Name, restarts)
	if err := s.checkMarker(); err != nil {
		t.Fatal(err)
	}
}

// testStop stops the VM for good and checks the stopped VM's answers.
func (s *suite) testStop(t *testing.T) {
	if err := s.halt(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.vm.Stop(ctx); !errors.Is(err, machine.ErrNotRunning) {
		t.Fatalf("Stop of a stopped VM: %v, want ErrNotRunning", err)
	}
	if c, err := s.vm.Dial(ctx, machine.PortControl); !errors.Is(err, machine.ErrNotRunning) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial of a stopped VM: %v, want ErrNotRunning", err)
	}
}

// sh runs script with /bin/sh in the guest over the shell port and returns
// its terminal output (line ends as "\n") and exit status. t, when not
// nil, bounds it by the check's deadline.
func (s *suite) sh(t *testing.T, script string) (string, int, error) {
	ctx := context.Background()
	if t != nil {
		ctx = checkCtx(t)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := s.vm.Dial(ctx, machine.PortShell)
	if err != nil {
		return "", 0, fmt.Errorf("dial the shell: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var out bytes.Buffer
	code, err := hostlink.RunShell(conn, hostlink.ShellRequest{Cols: 200, Rows: 50, Cmd: []string{"/bin/sh", "-c", script}}, nil, &out, nil)
	if err != nil {
		return out.String(), code, fmt.Errorf("shell %q: %w", script, err)
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n"), code, nil
}

// checkCtx is a context for one check, ended with it.
func checkCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "berth-" + hex.EncodeToString(b)
}

// shellQuote quotes s as one word for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
