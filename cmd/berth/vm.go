package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/app/dockercli"
	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/app/machine/qemu"
	"github.com/berthdesktop/berth/settings"
	"github.com/berthdesktop/berth/settings/sysproxy"
	"golang.org/x/term"
)

// startTimeout bounds `berth start` (TCG boots are slow).
const startTimeout = 10 * time.Minute

// stopTimeout bounds the graceful part of a stop.
const stopTimeout = 30 * time.Second

func layout(stderr io.Writer, cmd string) (desktop.Layout, bool) {
	l, err := desktop.DefaultLayout()
	if err != nil {
		fmt.Fprintf(stderr, "berth %s: %v\n", cmd, err)
		return l, false
	}
	return l, true
}

// startFlags are the flags of start, restart and daemon.
func startFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("berth "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	vmDir := fs.String("vm-dir", "", "folder of the VM image (vmlinuz, initrd.img); default $BERTH_VM_DIR or build/vm/<arch>")
	return fs, vmDir
}

func cmdStart(args []string, stdout, stderr io.Writer) int {
	fs, vmDir := startFlags("start", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	l, ok := layout(stderr, "start")
	if !ok {
		return 1
	}
	return start(l, *vmDir, stdout, stderr)
}

func start(l desktop.Layout, vmDir string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	ds := desktop.Inspect(ctx, l)
	switch {
	case ds.PID != 0 && ds.State != desktop.StateError:
		fmt.Fprintf(stdout, "berth is already %s (pid %d); docker socket %s\n", ds.State, ds.PID, l.DockerSocket())
		return 0
	case ds.PID != 0:
		// A service in error (the VM crashed) is stopped and started anew.
		if _, alive := desktop.DaemonPID(l); alive {
			fmt.Fprintf(stdout, "berth was in error (%s); stopping it first\n", ds.Error)
			if code := stop(l, stdout, stderr); code != 0 {
				return code
			}
		}
	}
	var err error
	if vmDir == "" {
		vmDir, err = desktop.FindVMDir()
	} else {
		vmDir, err = desktop.CheckVMDir(vmDir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth start: %v\n", err)
		return 1
	}
	// The settings are read here too, so a refusal or a settings file
	// kept aside is told on the user's terminal, not only in the log.
	store, err := settings.NewStore()
	if err == nil {
		var bad *settings.BadFile
		_, bad, err = desktop.LoadSettings(store)
		if bad != nil {
			fmt.Fprintf(stderr, "berth start: %v\n", bad)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth start: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(l.RunDir(), 0o700); err != nil {
		fmt.Fprintf(stderr, "berth start: %v\n", err)
		return 1
	}
	desktop.ClearLastError(l)
	os.Remove(l.PIDFile())
	// No service process runs here: a VM still running is an orphan.
	stopOrphanVM(ctx, l, stdout, stderr)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "berth start: %v\n", err)
		return 1
	}
	logf, err := os.OpenFile(l.DaemonLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "berth start: daemon log: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, "daemon", "--vm-dir", vmDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		fmt.Fprintf(stderr, "berth start: run the service process: %v\n", err)
		return 1
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	fmt.Fprintf(stdout, "Starting Berth (service pid %d, home %s)\n", cmd.Process.Pid, l.Home)

	c := desktop.NewControlClient(l)
	defer c.Close()
	last := ""
	for {
		st, err := c.Status(ctx)
		if err == nil {
			if st.Message != "" && st.Message != last {
				fmt.Fprintf(stdout, "  %5.1fs  %s\n", time.Since(began).Seconds(), st.Message)
				last = st.Message
			}
			switch st.State {
			case desktop.StateRunning:
				host := dockercli.HostURL(st.Socket)
				fmt.Fprintf(stdout, "Berth is running (docker ready after %.1fs; engine %s, kernel %s).\n", time.Since(began).Seconds(), st.Versions.Agent, st.Versions.Kernel)
				fmt.Fprintf(stdout, "Point the docker CLI at it with\n    docker context use %s\nor\n    export DOCKER_HOST=%s\n", dockercli.ContextName, host)
				return 0
			case desktop.StateError:
				fmt.Fprintf(stderr, "berth start: %s\n%s\n", st.Error, st.Hint)
				return 1
			}
		}
		select {
		case <-exited:
			if le, ok := desktop.ReadLastError(l); ok {
				fmt.Fprintf(stderr, "berth start: %s\n%s\n", le.Error, le.Hint)
			} else {
				fmt.Fprintf(stderr, "berth start: the service process ended; its log is %s\n", l.DaemonLog())
			}
			return 1
		case <-ctx.Done():
			fmt.Fprintf(stderr, "berth start: not ready after %s; `berth logs` shows the console; `berth stop` ends it\n", startTimeout)
			return 1
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func cmdStop(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: berth stop")
		return 2
	}
	l, ok := layout(stderr, "stop")
	if !ok {
		return 1
	}
	return stop(l, stdout, stderr)
}

func stop(l desktop.Layout, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout+30*time.Second)
	defer cancel()
	pid, alive := desktop.DaemonPID(l)
	if !alive {
		os.Remove(l.PIDFile())
		if stopOrphanVM(ctx, l, stdout, stderr) {
			return 0
		}
		fmt.Fprintln(stdout, "berth is not running")
		return 0
	}
	c := desktop.NewControlClient(l)
	defer c.Close()
	if err := c.Stop(ctx); err != nil {
		// The service does not answer: a signal asks it to stop the same way.
		fmt.Fprintf(stderr, "berth stop: %v; sending SIGTERM to pid %d\n", err, pid)
		terminate(pid)
	}
	fmt.Fprintln(stdout, "Stopping Berth")
	for {
		if _, alive := desktop.DaemonPID(l); !alive {
			stopOrphanVM(ctx, l, stdout, stderr)
			fmt.Fprintln(stdout, "Berth stopped")
			return 0
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "berth stop: the service process (pid %d) did not end; killing it\n", pid)
			kill(pid)
			return 1
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopOrphanVM ends a QEMU left running by a service process that died
// (killed, or crashed): SIGTERM, which QEMU takes as a quit, then SIGKILL.
// It reports whether there was one.
func stopOrphanVM(ctx context.Context, l desktop.Layout, stdout, stderr io.Writer) bool {
	pid, err := qemu.RunningPID(l.StateDir())
	if err != nil || pid == 0 {
		return false
	}
	fmt.Fprintf(stdout, "The VM (QEMU pid %d) outlived its service process; ending it\n", pid)
	terminate(pid)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, _ := qemu.RunningPID(l.StateDir()); p == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "berth stop: QEMU pid %d did not quit; killing it\n", pid)
	kill(pid)
	return true
}

func cmdRestart(args []string, stdout, stderr io.Writer) int {
	fs, vmDir := startFlags("restart", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	l, ok := layout(stderr, "restart")
	if !ok {
		return 1
	}
	if code := stop(l, stdout, stderr); code != 0 {
		return code
	}
	return start(l, *vmDir, stdout, stderr)
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("berth status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	l, ok := layout(stderr, "status")
	if !ok {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds := desktop.Inspect(ctx, l)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(ds)
	} else {
		fmt.Fprintf(stdout, "state:    %s\n", ds.State)
		if ds.Message != "" && ds.State != desktop.StateRunning {
			fmt.Fprintf(stdout, "progress: %s\n", ds.Message)
		}
		if ds.Error != "" {
			fmt.Fprintf(stdout, "error:    %s\nnext:     %s\n", ds.Error, ds.Hint)
		}
		if ds.Warning != "" {
			fmt.Fprintf(stdout, "warning:  %s\n", ds.Warning)
		}
		if ds.PID != 0 {
			fmt.Fprintf(stdout, "pid:      %d (VM %d)\n", ds.PID, ds.VMPID)
		}
		if ds.Socket != "" {
			fmt.Fprintf(stdout, "docker:   %s (engine %s)\n", dockercli.HostURL(ds.Socket), ds.Engine)
		}
		if ds.Versions.Agent != "" {
			fmt.Fprintf(stdout, "versions: agent %s, kernel %s\n", ds.Versions.Agent, ds.Versions.Kernel)
		}
		fmt.Fprintf(stdout, "home:     %s\n", ds.Home)
	}
	if ds.State == desktop.StateError {
		return 1
	}
	return 0
}

func cmdLogs(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: berth logs")
		return 2
	}
	l, ok := layout(stderr, "logs")
	if !ok {
		return 1
	}
	found := false
	for _, f := range []struct{ title, path string }{
		{"VM console", l.ConsoleLog()},
		{"berth service", l.DaemonLog()},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stderr, "berth logs: %v\n", err)
			}
			continue
		}
		found = true
		fmt.Fprintf(stdout, "==> %s (%s) <==\n%s\n", f.title, f.path, b)
	}
	if !found {
		fmt.Fprintf(stderr, "berth logs: no logs under %s yet (run `berth start`)\n", l.Home)
		return 1
	}
	return 0
}

func cmdShell(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, "usage: berth shell [COMMAND [ARG...]]\n\nA root shell in the VM (or COMMAND, run there on a terminal); exits with its status.")
		return 0
	}
	l, ok := layout(stderr, "shell")
	if !ok {
		return 1
	}
	conn, err := net.Dial("unix", l.ShellSocket())
	if err != nil {
		if _, alive := desktop.DaemonPID(l); !alive {
			fmt.Fprintln(stderr, "berth shell: berth is not running; start it with `berth start`")
		} else {
			fmt.Fprintf(stderr, "berth shell: %v\n", err)
		}
		return 1
	}
	req := hostlink.ShellRequest{Cmd: args, Term: os.Getenv("TERM")}
	in, _ := stdin.(*os.File)
	out, _ := stdout.(*os.File)
	var resize chan hostlink.WindowSize
	if in != nil && out != nil && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(out.Fd())) {
		if cols, rows, err := term.GetSize(int(out.Fd())); err == nil {
			req.Cols, req.Rows = cols, rows
		}
		state, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			fmt.Fprintf(stderr, "berth shell: raw terminal: %v\n", err)
			conn.Close()
			return 1
		}
		defer term.Restore(int(in.Fd()), state)
		resize = make(chan hostlink.WindowSize, 1)
		changed := make(chan struct{}, 1)
		stop := windowChanges(changed)
		defer stop()
		go func() {
			for range changed {
				if cols, rows, err := term.GetSize(int(out.Fd())); err == nil {
					select {
					case resize <- hostlink.WindowSize{Cols: cols, Rows: rows}:
					default:
					}
				}
			}
		}()
	}
	code, err := hostlink.RunShell(conn, req, stdin, stdout, resize)
	if err != nil {
		fmt.Fprintf(stderr, "\r\nberth shell: %v\n", err)
		return 1
	}
	return code
}

// cmdDaemon is the service process that `berth start` leaves running: it
// owns the VM and the forwards until asked to stop (control socket or
// SIGTERM/SIGINT), or the VM fails (it then stays up in the error state for
// `berth status` until `berth stop`).
func cmdDaemon(args []string, stdout, stderr io.Writer) int {
	fs, vmDir := startFlags("daemon", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	l, err := desktop.DefaultLayout()
	if err != nil {
		log.Error("berth daemon", "err", err)
		return 1
	}
	fail := func(err error) int {
		st := desktop.Status{State: desktop.StateError, Error: err.Error(), Hint: "see `berth logs`, then run `berth start` again"}
		desktop.WriteLastError(l, st)
		log.Error("berth daemon", "err", err)
		return 1
	}
	store, err := settings.NewStore()
	if err != nil {
		return fail(err)
	}
	doc, bad, err := desktop.LoadSettings(store)
	if bad != nil {
		log.Warn("berth daemon: " + bad.Error())
	}
	if err != nil {
		return fail(err)
	}
	dir := *vmDir
	if dir == "" {
		if dir, err = desktop.FindVMDir(); err != nil {
			return fail(err)
		}
	}
	svc := desktop.NewService(desktop.Options{
		NewVMFor: func(d *settings.Document) (machine.VM, error) {
			vs := desktop.VMSettings(d)
			vs.VMDir, vs.DiskFile = dir, l.DiskFile(d)
			return qemu.Driver{Log: log}.New(desktop.MachineConfig(l, vs))
		},
		Settings: doc,
		SystemProxy: func(ctx context.Context) (desktop.ProxyValues, error) {
			p, err := sysproxy.Read(ctx)
			return desktop.ProxyValues{HTTP: p.HTTP, HTTPS: p.HTTPS, NoProxy: p.NoProxy}, err
		},
		DiskFile:     l.DiskFile,
		DockerSocket: l.DockerSocket(),
		ShellSocket:  l.ShellSocket(),
		StopTimeout:  stopTimeout,
		Log:          log,
	})
	ctl, err := desktop.ListenControl(l, svc, log)
	if err != nil {
		return fail(err)
	}
	go ctl.Serve()
	defer ctl.Close()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	startErr := make(chan error, 1)
	go func() { startErr <- svc.Start(ctx) }()
	for {
		select {
		case err := <-startErr:
			if err != nil {
				// Start has undone itself; the error stays for `berth status`.
				log.Error("start failed", "err", err)
				desktop.WriteLastError(l, svc.Status())
				return 1
			}
			startErr = nil
			continue
		case <-ctl.StopRequested():
		case <-sigs:
		}
		break
	}
	cancel()
	log.Info("stopping")
	if startErr != nil {
		<-startErr // the cancelled start undoes itself
	}
	sctx, scancel := context.WithTimeout(context.Background(), stopTimeout+15*time.Second)
	defer scancel()
	if err := svc.Stop(sctx); err != nil && !errors.Is(err, desktop.ErrNotRunning) {
		log.Error("stop", "err", err)
		return 1
	}
	desktop.ClearLastError(l)
	log.Info("stopped")
	return 0
}
