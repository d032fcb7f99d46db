package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// VM is one QEMU virtual machine.
type VM struct {
	cfg       machine.Config
	accel     string
	qemu      string
	virtiofsd string
	log       *slog.Logger

	mu         sync.Mutex
	state      machine.State
	cmd        *exec.Cmd
	fsds       []*exec.Cmd
	qmp        *qmpClient
	dialer     hostlink.Dialer
	done       chan struct{}
	err        error
	stopAsked  bool
	lastReason string // reason of QEMU's last SHUTDOWN event
	stderr     *tailBuffer
	env        hostEnv
}

var _ machine.VM = (*VM)(nil)

// Config returns the VM's configuration.
func (v *VM) Config() machine.Config { return v.cfg }

// Accelerator reports "kvm" or "tcg" for the last Start.
func (v *VM) Accelerator() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.env.KVM {
		return "kvm"
	}
	return "tcg"
}

// Start prepares the disk, the state folder and the virtiofsd processes,
// then starts QEMU and connects to its monitor.
func (v *VM) Start(ctx context.Context) (err error) {
	v.mu.Lock()
	switch v.state {
	case machine.StateStarting, machine.StateRunning, machine.StateStopping:
		v.mu.Unlock()
		return fmt.Errorf("start %s: %w", v.cfg.Name, machine.ErrAlreadyRunning)
	}
	v.state = machine.StateStarting
	v.stopAsked = false
	v.lastReason = ""
	v.err = nil
	done := make(chan struct{})
	v.done = done
	v.mu.Unlock()

	defer func() {
		if err != nil {
			v.cleanupFailedStart()
		}
	}()
	if err := os.MkdirAll(v.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("start %s: create state folder: %w", v.cfg.Name, err)
	}
	if err := os.Chmod(v.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	}
	if pid, err := RunningPID(v.cfg.StateDir); err != nil {
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	} else if pid != 0 {
		return fmt.Errorf("start %s: qemu pid %d uses %s: %w", v.cfg.Name, pid, v.cfg.StateDir, machine.ErrAlreadyRunning)
	}
	for _, name := range []string{qmpSocket, linkSocket, pidFile} {
		os.Remove(filepath.Join(v.cfg.StateDir, name))
	}
	if v.cfg.Disk.Path != "" {
		grew, err := ensureDisk(v.cfg.Disk.Path, v.cfg.Disk.SizeBytes)
		if err != nil {
			return fmt.Errorf("start %s: %w", v.cfg.Name, err)
		}
		if grew {
			v.log.Info("data disk grown", "path", v.cfg.Disk.Path, "bytes", v.cfg.Disk.SizeBytes)
		}
	}
	env := probeHost(v.cfg)
	switch v.accel {
	case "kvm":
		env.KVM = true
	case "tcg":
		env.KVM = false
	}
	env.Now = time.Now()
	args, err := buildArgs(v.cfg, env)
	if err != nil {
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	}
	v.mu.Lock()
	v.env = env
	v.mu.Unlock()

	if err := v.startVirtiofsd(ctx); err != nil {
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	}

	logf, err := os.OpenFile(filepath.Join(v.cfg.StateDir, qemuLog), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("start %s: %w", v.cfg.Name, err)
	}
	tail := &tailBuffer{max: 4096}
	cmd := exec.Command(v.qemu, args...)
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, tail)
	// Berth stops QEMU through the monitor, not by a terminal's signals.
	cmd.SysProcAttr = detached()
	v.log.Info("starting qemu", "accel", map[bool]string{true: "kvm", false: "tcg"}[env.KVM], "args", args)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: run %s: %w", v.cfg.Name, v.qemu, err)
	}
	v.mu.Lock()
	v.cmd = cmd
	v.stderr = tail
	v.mu.Unlock()
	go v.wait(cmd, logf, done)

	alive := func() bool {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	q, err := dialQMP(ctx, filepath.Join(v.cfg.StateDir, qmpSocket), alive, v.onEvent)
	if err != nil {
		v.kill()
		<-done
		return fmt.Errorf("start %s: %w: %s", v.cfg.Name, err, tail.String())
	}
	if env.VsockCID == 0 {
		if err := os.Chmod(filepath.Join(v.cfg.StateDir, linkSocket), 0o600); err != nil {
			q.Close()
			v.kill()
			<-done
			return fmt.Errorf("start %s: link socket: %w", v.cfg.Name, err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.qmp = q
	if env.VsockCID != 0 {
		v.dialer = hostlink.NewVsock(env.VsockCID)
	} else {
		v.dialer = hostlink.NewSerial(filepath.Join(v.cfg.StateDir, linkSocket), v.log)
	}
	if v.state == machine.StateStarting {
		v.state = machine.StateRunning
	}
	return nil
}

// startVirtiofsd runs one virtiofsd per share and waits for its socket.
func (v *VM) startVirtiofsd(ctx context.Context) error {
	for i, s := range v.cfg.Shares {
		sock := filepath.Join(v.cfg.StateDir, fsSocket(i))
		os.Remove(sock)
		cmd := exec.Command(v.virtiofsd, virtiofsdArgs(v.cfg, i)...)
		logf, err := os.OpenFile(filepath.Join(v.cfg.StateDir, fmt.Sprintf("virtiofsd%d.log", i)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = detached()
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("run virtiofsd for share %s: %w", s.Tag, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(exited) }()
		v.mu.Lock()
		v.fsds = append(v.fsds, cmd)
		v.mu.Unlock()
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			select {
			case <-exited:
				return fmt.Errorf("virtiofsd for share %s (%s) exited before serving: see %s", s.Tag, s.HostPath, logf.Name())
			case <-ctx.Done():
				return fmt.Errorf("virtiofsd for share %s: %w", s.Tag, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// wait reaps QEMU and settles the final state.
func (v *VM) wait(cmd *exec.Cmd, logf *os.File, done chan struct{}) {
	werr := cmd.Wait()
	logf.Close()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, f := range v.fsds {
		if f.Process != nil {
			f.Process.Kill()
		}
	}
	v.fsds = nil
	if v.qmp != nil {
		v.qmp.Close()
		v.qmp = nil
	}
	if d, ok := v.dialer.(*hostlink.SerialDialer); ok {
		d.Close()
	}
	v.dialer = nil
	switch {
	case v.stopAsked:
		v.state = machine.StateStopped
	case werr == nil && v.lastReason == "guest-shutdown":
		// The guest powered itself off.
		v.state = machine.StateStopped
	default:
		v.state = machine.StateCrashed
		reason := v.lastReason
		if reason == "" {
			reason = "no shutdown event"
		}
		exit := "exit 0"
		if werr != nil {
			exit = werr.Error()
		}
		v.err = fmt.Errorf("%s: %w: qemu %s (%s): %s", v.cfg.Name, machine.ErrCrashed, exit, reason, bytes.TrimSpace([]byte(v.stderr.String())))
		v.log.Error("vm crashed", "err", v.err)
	}
	os.Remove(filepath.Join(v.cfg.StateDir, pidFile))
	close(done)
}

func (v *VM) onEvent(name string, data json.RawMessage) {
	v.log.Debug("qmp event", "event", name, "data", string(data))
	if name == "SHUTDOWN" {
		v.mu.Lock()
		v.lastReason = shutdownReason(data)
		v.mu.Unlock()
	}
}

// cleanupFailedStart stops what a failed Start left running.
func (v *VM) cleanupFailedStart() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, f := range v.fsds {
		if f.Process != nil {
			f.Process.Kill()
		}
	}
	v.fsds = nil
	if v.state == machine.StateStarting {
		v.state = machine.StateStopped
	}
	select {
	case <-v.done:
	default:
		if v.cmd == nil || v.cmd.Process == nil {
			close(v.done)
		}
	}
}

func (v *VM) kill() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stopAsked = true
	if v.cmd != nil && v.cmd.Process != nil {
		v.cmd.Process.Kill()
	}
}

// powerButtonRepeat is how long Stop waits for the guest to power off
// before it presses the power button again.
const powerButtonRepeat = 3 * time.Second

// Stop presses the ACPI power button, again every powerButtonRepeat, and
// waits for QEMU to end; when ctx ends first it quits QEMU through the
// monitor, and kills it if that does not end it within five seconds.
func (v *VM) Stop(ctx context.Context) error {
	v.mu.Lock()
	if v.state != machine.StateRunning && v.state != machine.StateStarting {
		st := v.state
		v.mu.Unlock()
		if st == machine.StateStopping {
			return v.waitDone(ctx)
		}
		return fmt.Errorf("stop %s: %w", v.cfg.Name, machine.ErrNotRunning)
	}
	v.state = machine.StateStopping
	v.stopAsked = true
	q, done := v.qmp, v.done
	v.mu.Unlock()

	// A press the guest is not yet listening for (its power button's
	// module loads late in boot) is lost, so the button is pressed again
	// until the guest powers off; pid1 takes any press after the first as
	// the same request.
	press := func() error {
		if q == nil {
			return nil
		}
		return q.execute(ctx, "system_powerdown")
	}
	if err := press(); err != nil {
		v.log.Warn("graceful stop failed", "err", err)
	}
	again := time.NewTicker(powerButtonRepeat)
	defer again.Stop()
wait:
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			break wait
		case <-again.C:
			press()
		}
	}
	v.log.Warn("guest did not power off in time; quitting qemu")
	if q != nil {
		qctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		q.execute(qctx, "quit")
		cancel()
	}
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
	}
	v.kill()
	<-done
	return nil
}

// ResizeDisk grows the running VM's data disk to size bytes (the image
// file grows with it, through the monitor's block_resize), which the guest
// sees at once; it implements machine.DiskResizer. Shrinking is refused.
func (v *VM) ResizeDisk(ctx context.Context, size int64) error {
	v.mu.Lock()
	q, st := v.qmp, v.state
	v.mu.Unlock()
	if st != machine.StateRunning || q == nil {
		return fmt.Errorf("resize the disk of %s: %w", v.cfg.Name, machine.ErrNotRunning)
	}
	if v.cfg.Disk.Path == "" {
		return fmt.Errorf("resize the disk of %s: %w: the VM has no data disk", v.cfg.Name, machine.ErrInvalidConfig)
	}
	fi, err := os.Stat(v.cfg.Disk.Path)
	if err != nil {
		return fmt.Errorf("resize the disk of %s: %w", v.cfg.Name, err)
	}
	if size < fi.Size() {
		return fmt.Errorf("resize the disk of %s: %w: %d bytes is smaller than the disk (%d)", v.cfg.Name, machine.ErrInvalidConfig, size, fi.Size())
	}
	if size == fi.Size() {
		return nil
	}
	if err := q.executeArgs(ctx, "block_resize", map[string]any{"device": "d0", "size": size}); err != nil {
		return fmt.Errorf("resize the disk of %s: %w", v.cfg.Name, err)
	}
	v.mu.Lock()
	v.cfg.Disk.SizeBytes = size
	v.mu.Unlock()
	return nil
}

func (v *VM) waitDone(ctx context.Context) error {
	select {
	case <-v.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", v.cfg.Name, ctx.Err())
	}
}

// State reports the current state.
func (v *VM) State() machine.State {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state
}

// Done is closed when the QEMU process of the last Start has ended.
func (v *VM) Done() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.done
}

// Err wraps machine.ErrCrashed when QEMU ended without being asked to.
func (v *VM) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Dial connects to a guest agent port over vsock or the serial link.
func (v *VM) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	v.mu.Lock()
	d := v.dialer
	v.mu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("dial %s port %d: %w", v.cfg.Name, port, machine.ErrNotRunning)
	}
	return d.Dial(ctx, port)
}

// PID returns QEMU's process ID, or 0 when it is not running.
func (v *VM) PID() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || v.cmd.Process == nil || v.state == machine.StateStopped || v.state == machine.StateCrashed {
		return 0
	}
	return v.cmd.Process.Pid
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
