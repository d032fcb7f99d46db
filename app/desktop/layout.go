// Package desktop owns the one service that Berth's GUI and CLI drive: the
// life cycle of the VM (stopped, starting with progress messages, running,
// stopping, error with the reason and what to do next) over a machine.VM,
// the docker socket and published ports forwarded to it, the guest clock
// kept in step, and the docker context "berth"; the layout of $BERTH_HOME
// where all of that keeps its state; the control socket through which a
// CLI invocation talks to the long-lived process that owns the VM; and the
// actions on Berth's files: reset to factory defaults, purge data,
// uninstall (each a Plan listed before it is applied) and the
// diagnostics bundle.
package desktop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/hostshare"
	"github.com/berthdesktop/berth/settings"
)

// Layout names every file Berth keeps under its home folder.
type Layout struct {
	// Home is $BERTH_HOME, or ~/.berth.
	Home string
}

// HomeDir is $BERTH_HOME, or ~/.berth when it is not set.
func HomeDir() (string, error) {
	if h := os.Getenv("BERTH_HOME"); h != "" {
		return filepath.Abs(h)
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("berth home folder: %w", err)
	}
	return filepath.Join(u, ".berth"), nil
}

// DefaultLayout is the layout under HomeDir.
func DefaultLayout() (Layout, error) {
	h, err := HomeDir()
	if err != nil {
		return Layout{}, err
	}
	return Layout{Home: h}, nil
}

// StateDir holds the hypervisor's runtime files (machine.Config.StateDir).
func (l Layout) StateDir() string { return filepath.Join(l.Home, "vm") }

// DiskPath is the VM's raw data disk.
func (l Layout) DiskPath() string { return filepath.Join(l.Home, "vm", "data.img") }

// DiskFile is the VM's data disk for the settings d: in the folder
// resources.diskPath names, else DiskPath.
func (l Layout) DiskFile(d *settings.Document) string {
	if d != nil && d.Resources.DiskPath != "" {
		return filepath.Join(d.Resources.DiskPath, filepath.Base(l.DiskPath()))
	}
	return l.DiskPath()
}

// ConsoleLog receives the VM's serial console.
func (l Layout) ConsoleLog() string { return filepath.Join(l.Home, "vm", "console.log") }

// RunDir holds the sockets and pid file of the running service.
func (l Layout) RunDir() string { return filepath.Join(l.Home, "run") }

// DockerSocket is the forwarded docker socket.
func (l Layout) DockerSocket() string { return filepath.Join(l.Home, "run", "docker.sock") }

// ShellSocket is spliced to the guest's shell port, for `berth shell`.
func (l Layout) ShellSocket() string { return filepath.Join(l.Home, "run", "shell.sock") }

// ControlSocket is the socket of the service process (see Control).
func (l Layout) ControlSocket() string { return filepath.Join(l.Home, "run", "berth.sock") }

// PIDFile holds the service process's pid while it runs.
func (l Layout) PIDFile() string { return filepath.Join(l.Home, "run", "berth.pid") }

// DaemonLog is the service process's log.
func (l Layout) DaemonLog() string { return filepath.Join(l.Home, "berth.log") }

// LastError records why the service process last ended in error, for a
// status read after it is gone.
func (l Layout) LastError() string { return filepath.Join(l.Home, "run", "last-error.json") }

// Settings are the user-visible VM resources.
type Settings struct {
	CPUs      int
	MemoryMiB int
	DiskBytes int64
	// Shares are host folders shared into the VM at the same path (on
	// Windows, C:\Users is /run/host/c/Users in the VM).
	Shares []string
	// VMDir holds the VM image (vmlinuz, initrd.img) for the VM's arch.
	VMDir string
	// SwapMiB is the VM's swap file (0: none); Subnet the VM's network
	// ("" is the hypervisor's default).
	SwapMiB int
	Subnet  string
	// DiskFile is the data disk's file ("" is Layout.DiskPath).
	DiskFile string
}

// The default VM resources.
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 2048
	DefaultDiskBytes = 64 << 30
)

// DefaultSettings are 2 CPUs, 2 GiB, a 64 GiB sparse disk and the user's
// home folder shared at the same path; the VM image is found by FindVMDir.
func DefaultSettings() (Settings, error) {
	s := Settings{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, DiskBytes: DefaultDiskBytes}
	if u, err := os.UserHomeDir(); err == nil {
		s.Shares = []string{u}
	}
	dir, err := FindVMDir()
	if err != nil {
		return s, err
	}
	s.VMDir = dir
	return s, nil
}

// ErrNoVMImage is returned when no VM image folder is found.
var ErrNoVMImage = errors.New("no VM image found")

// FindVMDir finds the VM image folder for the host's arch: $BERTH_VM_DIR,
// else build/vm/<arch> beside the running binary's folder or its parent
// (bin/berth in a source tree), else under the working folder.
func FindVMDir() (string, error) {
	if d := os.Getenv("BERTH_VM_DIR"); d != "" {
		return CheckVMDir(d)
	}
	var tried []string
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dir := filepath.Dir(exe)
		candidates = append(candidates,
			filepath.Join(dir, "build", "vm", runtime.GOARCH),
			filepath.Join(dir, "..", "build", "vm", runtime.GOARCH))
	}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, "build", "vm", runtime.GOARCH))
	}
	for _, c := range candidates {
		if d, err := CheckVMDir(c); err == nil {
			return d, nil
		}
		tried = append(tried, filepath.Clean(c))
	}
	return "", fmt.Errorf("%w for %s (looked in %v): build it with `make vmimage`, or name its folder with --vm-dir or BERTH_VM_DIR", ErrNoVMImage, runtime.GOARCH, tried)
}

// CheckVMDir checks that d holds a VM image (vmlinuz, initrd.img) and
// returns it absolute.
func CheckVMDir(d string) (string, error) {
	d, err := filepath.Abs(d)
	if err != nil {
		return "", fmt.Errorf("VM image folder: %w", err)
	}
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			return "", fmt.Errorf("%w: %s", ErrNoVMImage, err)
		}
	}
	return d, nil
}

// MachineConfig is the VM description for settings s under layout l.
func MachineConfig(l Layout, s Settings) machine.Config {
	if s.DiskFile == "" {
		s.DiskFile = l.DiskPath()
	}
	cfg := machine.Config{
		Name:           "berth",
		CPUs:           s.CPUs,
		MemoryMiB:      s.MemoryMiB,
		Disk:           machine.Disk{Path: s.DiskFile, SizeBytes: s.DiskBytes},
		Kernel:         filepath.Join(s.VMDir, "vmlinuz"),
		Initrd:         filepath.Join(s.VMDir, "initrd.img"),
		ConsoleLogPath: l.ConsoleLog(),
		StateDir:       l.StateDir(),
		Arch:           machine.Arch(runtime.GOARCH),
		// The engine reads bind sources as this host writes them (a
		// Windows docker CLI sends C:\x).
		Cmdline: []string{"berth.hostos=" + runtime.GOOS},
		Subnet:  s.Subnet,
	}
	if s.SwapMiB > 0 {
		cfg.Cmdline = append(cfg.Cmdline, fmt.Sprintf("berth.swap=%d", s.SwapMiB))
	}
	for i, p := range s.Shares {
		// The VM path is the host path on macOS and Linux, and under
		// /run/host on Windows (hostshare.VMPath).
		guest := p
		if hp, err := hostshare.ParseHostPath(runtime.GOOS, p); err == nil {
			guest = hostshare.VMPath(runtime.GOOS, hp)
		}
		cfg.Shares = append(cfg.Shares, machine.Share{Tag: fmt.Sprintf("share%d", i), HostPath: p, GuestPath: guest})
	}
	return cfg
}
