package pid1

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthdesktop/berth/guestagent/link"
)

// Version is the agent's version, set at link time by the image build.
var Version = "dev"

// Guest paths and the engine's command line.
const (
	AgentPath  = "/berth-agent"
	DataRoot   = "/var/lib/berth"
	ExecRoot   = "/run/berth"
	EngineSock = ExecRoot + "/docker.sock"
	// DockerSock is the engine's second socket, at Docker's usual path.
	DockerSock = "/var/run/docker.sock"
	// ModulesLoad lists the modules of the devices pid1 needs at once, each
	// line a module and what it needs ("PATH: DEP..."); ModulesEngineLoad
	// those only the engine needs, which it waits for; ModulesLateLoad
	// those that can come last (vsock, which only the channel's vsock
	// transport waits for, and the power button). They load as one graph,
	// earlier lists first, while pid1 goes on.
	ModulesLoad       = "/etc/berth/modules.load"
	ModulesEngineLoad = "/etc/berth/modules-engine.load"
	ModulesLateLoad   = "/etc/berth/modules-late.load"
)

// Main runs PID 1. It does not return while the VM runs: it powers off.
func Main(args []string) error {
	if os.Getpid() != 1 {
		return fmt.Errorf("init must run as PID 1 (running as %d)", os.Getpid())
	}
	unix.Umask(0o022)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")

	// Leave the initramfs: pivot_root cannot leave it, which the container
	// runtime needs.
	if err := switchRoot(); err != nil {
		return fatal(log, fmt.Errorf("switch root: %w", err))
	}
	g := &guest{log: log, shutdownCh: make(chan string, 1), started: bootTime(), files: &link.FileEvents{Log: log}}
	if err := g.boot(); err != nil {
		return fatal(log, err)
	}
	g.run()
	return nil
}

// fatal reports a boot failure and powers off: PID 1 must not exit, which
// would panic the kernel.
func fatal(log *slog.Logger, err error) error {
	log.Error("berth: boot failed", "err", err)
	fmt.Fprintf(os.Stderr, "berth: boot failed: %v\n", err)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// bootTime is the time since the kernel started.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// guest is the running PID 1.
type guest struct {
	log        *slog.Logger
	params     Params
	started    time.Duration
	kernel     string
	shutdownCh chan string
	reaper     *reaper
	engine     *supervisor
	applyMu    sync.Mutex // one engine or disk change at a time
	files      *link.FileEvents
	control    *link.Control
	ports      *link.PortBroadcaster
	// networkReady closes when the network setup has ended.
	networkReady chan struct{}
	modules      *moduleLoader
	mounts       []string       // mounted data disk and shares, in mount order
	engineDeps   sync.WaitGroup // engine modules and cgroup2 delegation
	mu           sync.Mutex
}

// boot brings the guest up to the point where the engine can start.
func (g *guest) boot() error {
	if err := mountBase(); err != nil {
		return fmt.Errorf("base mounts: %w", err)
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("read kernel command line: %w", err)
	}
	g.params, err = ParseCmdline(string(cmdline))
	if err != nil {
		g.log.Error("berth: kernel command line", "err", err)
		g.params = Params{Disk: DefaultDisk, Net: NetDHCP}
	}
	if g.params.Debug {
		g.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		slog.SetDefault(g.log)
	}
	g.step("base mounts")
	// From here on the reaper waits for every child: no exec.Cmd.Wait after.
	g.reaper = startReaper(g.log)
	g.engine = newSupervisor(g.log, g.reaper, nil, EngineSock)
	// The engine binary starts now and waits for its arguments (which name
	// the gateway the DHCP lease brings): its start-up overlaps the modules,
	// the network and the disk. A stand-in engine starts when its turn comes.
	if g.params.Engine == "" {
		if err := g.engine.prestart(AgentPath); err != nil {
			g.log.Warn("berth: engine", "err", err)
		}
	}
	if !g.params.Time.IsZero() {
		if err := setClock(g.params.Time); err != nil {
			g.log.Warn("berth: set clock from command line", "err", err)
		}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		g.kernel = unix.ByteSliceToString(uts.Release[:])
	}
	_ = unix.Sethostname([]byte("berth"))
	// Modules load two at a time in the background, the boot list first;
	// each step below waits for the list it needs.
	g.modules = startModules(g.log, moduleWorkers, loadModule, ModulesLoad, ModulesEngineLoad, ModulesLateLoad)
	// The network comes up as soon as its device is there (setupNetwork
	// waits for eth0): the DHCP exchange goes on beside the rest of the
	// modules and the disk.
	g.networkReady = make(chan struct{})
	devices := make(chan struct{})
	go func() {
		g.modules.wait(ModulesLoad)
		close(devices)
	}()
	go func() {
		defer close(g.networkReady)
		if err := setupNetwork(g.log, g.params.Net, devices); err != nil {
			g.log.Warn("berth: network", "err", err)
		}
		g.step("network")
	}()
	// What only the engine needs goes on beside the disk and the channel.
	g.engineDeps.Add(2)
	go func() {
		defer g.engineDeps.Done()
		g.modules.wait(ModulesEngineLoad)
		g.step("engine modules")
	}()
	go func() {
		defer g.engineDeps.Done()
		if err := setupCgroup2(); err != nil {
			g.log.Warn("berth: cgroup2", "err", err)
		}
		g.step("cgroup2")
	}()
	g.modules.wait(ModulesLoad)
	g.step("modules")
	return nil
}

// run starts the services and waits for the shutdown request.
func (g *guest) run() {

	needSerial := g.params.Link != "vsock"
	linkVirtioPorts(g.log, needSerial)
	g.step("virtio ports")

	if err := g.setupDisk(); err != nil {
		g.log.Error("berth: data disk; the data root stays on the tmpfs root", "err", err)
		_ = os.MkdirAll(DataRoot, 0o711)
	}
	g.step("data disk")
	go func() {
		if err := g.setupSwap(); err != nil {
			g.log.Warn("berth: swap", "err", err)
		}
	}()
	g.mountShares()
	if g.params.Rosetta != "" {
		// The engine starts once x86-64 binaries can run: binfmt_misc is
		// in the engine's module list.
		g.engineDeps.Add(1)
		go func() {
			defer g.engineDeps.Done()
			g.modules.wait(ModulesEngineLoad)
			if err := g.setupRosetta(); err != nil {
				g.log.Error("berth: rosetta", "tag", g.params.Rosetta, "err", err)
			}
			g.step("rosetta")
		}()
	}

	go func() {
		g.modules.wait(ModulesLateLoad)
		watchPowerButton(g.log, func() { g.Shutdown() })
	}()

	g.ports = link.NewPortBroadcaster(0)
	linkReady := g.startLink()
	g.engineDeps.Wait()
	// The engine's command names the default gateway, which comes with the
	// DHCP lease: it waits for the network setup to end (as the ready line
	// does), which is before the engine modules in a boot with a lease.
	<-g.networkReady
	g.engine.argv = g.engineCommand()
	g.engine.start()

	ctx, cancel := context.WithCancel(context.Background())
	// Published ports follow the engine's containers.
	go (&link.EnginePorts{Socket: EngineSock, Ports: g.ports, Binds: g.files, Retry: 500 * time.Millisecond, Log: g.log}).Run(ctx)
	go func() {
		<-linkReady
		g.step("link listening")
		if !g.engine.waitReady(ctx) {
			return
		}
		g.step("engine ready")
		if g.params.Debug {
			if mi, err := os.ReadFile("/proc/meminfo"); err == nil {
				g.log.Debug("berth: memory at ready", "meminfo", strings.Join(strings.Fields(string(mi)), " "))
			}
		}
		<-g.networkReady
		fmt.Fprintf(os.Stdout, "berth: agent ready in %d ms, %d MiB in use\n", bootTime().Milliseconds(), memoryInUse()>>20)
	}()

	reason := <-g.shutdownCh
	cancel()
	g.poweroff(reason)
}

// memoryInUse is the guest memory that cannot be given back: what is not
// free, less buffers, reclaimable slab and the page cache other than shared
// memory (the tmpfs root lives there).
func memoryInUse() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return MemoryInUse(string(data))
}

// step logs, at debug level, the end of a boot step and the time since the
// kernel started.
func (g *guest) step(name string) {
	g.log.Debug("berth: boot step done", "step", name, "ms", bootTime().Milliseconds())
}

// engineCommand is the engine's argv, with the VM's gateway as what
// host.docker.internal resolves to.
func (g *guest) engineCommand() []string {
	args := EngineArgs(g.params, defaultGateway())
	if _, err := os.Stat(EngineConfigPath); err == nil {
		args = append(args, "--config-file", EngineConfigPath)
	}
	return args
}

// defaultGateway is the router of the VM's default route: on QEMU's user
// network it reaches the host's loopback; elsewhere the host's own side
// of the VM's network. Invalid when there is no default route.
func defaultGateway() netip.Addr {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			if a, ok := netip.AddrFromSlice(r.Gw); ok {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// EngineArgs is the engine's command line under pid1: its roots and socket
// in the VM, and the shared folders (mounted at their host paths) as the
// only host paths bind mounts may name (--shared-paths; a source elsewhere
// gets Docker Desktop's "Mounts denied" error). Every container resolves
// host.docker.internal to hostGW, when valid. berth.debug makes the engine
// log at debug level too.
func EngineArgs(p Params, hostGW netip.Addr) []string {
	bin := AgentPath
	if p.Engine != "" {
		bin = p.Engine
	}
	// The API also answers at Docker's usual path, so that containers can
	// bind /var/run/docker.sock (the engine lets binds of its own sockets
	// through, shared folder or not).
	args := []string{bin, "engine", "--data-root", DataRoot, "--exec-root", ExecRoot, "-H", "unix://" + EngineSock, "-H", "unix://" + DockerSock}
	if hostGW.IsValid() {
		args = append(args, "--host-gateway-ip", hostGW.String(), "--host-docker-internal")
	}
	if p.HostOS != "" {
		args = append(args, "--host-os", p.HostOS)
	}
	// Containers get the proxies of daemon.json (the settings' proxies)
	// as HTTP_PROXY and the rest, as with Docker Desktop.
	args = append(args, "--container-proxies")
	if p.Debug {
		args = append(args, "--debug")
	}
	if len(p.Shares) > 0 {
		paths := make([]string, 0, len(p.Shares))
		for _, s := range p.Shares {
			paths = append(paths, s.Path)
		}
		args = append(args, "--shared-paths", strings.Join(paths, ","))
	}
	return args
}

// startLink serves the channel on every transport asked for and present.
// The returned channel closes when one transport listens.
func (g *guest) startLink() <-chan struct{} {
	mux := link.NewMux(g.log)
	g.control = &link.Control{
		Sys:      g,
		Ports:    g.ports,
		Versions: map[string]string{"agent": Version, "kernel": g.kernel},
		Log:      g.log,
		// The engine keeps its volumes here (--data-root DataRoot).
		VolumesRoot: DataRoot + "/volumes",
	}
	mux.Handle(link.PortControl, g.control.ServeConn)
	mux.Handle(link.PortDockerAPI, (&link.EngineProxy{Socket: EngineSock, Log: g.log}).ServeConn)
	mux.Handle(link.PortTunnel, (&link.Tunnel{Log: g.log, NetworkReady: g.networkReady}).ServeConn)
	mux.Handle(link.PortShell, (&link.Shell{Spawn: g.spawnShell, Log: g.log}).ServeConn)
	mux.Handle(link.PortFileEvents, g.files.ServeConn)

	var transports []link.Transport
	if g.params.Link != "vsock" {
		if _, err := os.Stat(link.SerialPath); err == nil || g.params.Link == "serial" {
			transports = append(transports, &link.Serial{Log: g.log})
		}
	}
	if g.params.Link != "serial" {
		transports = append(transports, &lateTransport{Transport: &link.Vsock{Log: g.log}, wait: func() { g.modules.wait(ModulesLateLoad) }})
	}
	ready := make(chan struct{})
	var once sync.Once
	for _, t := range transports {
		r := make(chan struct{})
		go func() {
			<-r
			once.Do(func() { close(ready) })
		}()
		go func() {
			if err := t.Serve(context.Background(), mux, r); err != nil {
				name := fmt.Sprintf("%T", t)
				if lt, ok := t.(*lateTransport); ok {
					name = fmt.Sprintf("%T", lt.Transport)
				}
				g.log.Warn("berth: link transport", "transport", name, "err", err)
			}
		}()
	}
	return ready
}

// lateTransport serves a transport once what it needs has loaded (vsock,
// for the vsock transport).
type lateTransport struct {
	link.Transport
	wait func()
}

func (t *lateTransport) Serve(ctx context.Context, m *link.Mux, ready chan<- struct{}) error {
	t.wait()
	return t.Transport.Serve(ctx, m, ready)
}

// EngineState implements link.System.
func (g *guest) EngineState() string { return g.engine.state() }

// Uptime implements link.System.
func (g *guest) Uptime() time.Duration { return bootTime() }

// SetClock implements link.System.
func (g *guest) SetClock(t time.Time) error { return setClock(t) }

// Shutdown implements link.System.
func (g *guest) Shutdown() {
	select {
	case g.shutdownCh <- "requested":
	default:
	}
}

// DiskUsage implements link.System.
func (g *guest) DiskUsage() (link.DiskUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(DataRoot, &st); err != nil {
		return link.DiskUsage{}, fmt.Errorf("statfs %s: %w", DataRoot, err)
	}
	bs := uint64(st.Bsize)
	return link.DiskUsage{
		DataRoot:   DataRoot,
		TotalBytes: st.Blocks * bs,
		UsedBytes:  (st.Blocks - st.Bfree) * bs,
		FreeBytes:  st.Bavail * bs,
	}, nil
}

func setClock(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("settimeofday: %w", err)
	}
	return nil
}

// poweroff stops the engine and every other process, syncs, unmounts the
// data disk and shares, and powers the VM off.
func (g *guest) poweroff(reason string) {
	g.log.Info("berth: shutting down", "reason", reason)
	g.engine.stop(20 * time.Second)
	// What the engine left behind gets SIGTERM and a grace, then SIGKILL.
	_ = unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && userProcesses() > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	_ = unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	swapOff()
	unmountAll(g.log)
	unix.Sync()
	fmt.Fprintln(os.Stdout, "berth: power off")
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		g.log.Error("berth: power off", "err", err)
	}
	select {}
}

// userProcesses counts the processes other than PID 1 that are not kernel
// threads (kernel threads have an empty command line) and not zombies.
func userProcesses() int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && len(cmd) > 0 {
			n++
		}
	}
	return n
}

// unmountAll unmounts, deepest first, everything but the kernel's own
// filesystems and the root; what stays busy is remounted read-only.
func unmountAll(log *slog.Logger) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		log.Warn("berth: read mountinfo", "err", err)
		return
	}
	points := mountPoints(string(data))
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		if keepMounted(p) {
			continue
		}
		if err := unix.Unmount(p, 0); err != nil {
			if rerr := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
				log.Warn("berth: unmount", "path", p, "err", err, "remount", rerr)
			}
		}
	}
}

func keepMounted(p string) bool {
	switch p {
	case "/", "/proc", "/sys", "/dev", "/run", "/tmp":
		return true
	}
	for _, pre := range []string{"/proc/", "/sys/", "/dev/"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// mountPoints returns the mount points of a mountinfo text in mount order.
func mountPoints(mountinfo string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		out = append(out, unescapeMountinfo(f[4]))
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 etc.) of mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			o := s[i+1 : i+4]
			if o[0] >= '0' && o[0] <= '3' && o[1] >= '0' && o[1] <= '7' && o[2] >= '0' && o[2] <= '7' {
				b.WriteByte((o[0]-'0')<<6 | (o[1]-'0')<<3 | (o[2] - '0'))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
