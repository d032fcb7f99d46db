//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"

	"github.com/berthdesktop/berth/guestagent/api"
	ctrengine "github.com/berthdesktop/berth/guestagent/engine"
	"github.com/berthdesktop/berth/guestagent/logs"
	"github.com/berthdesktop/berth/guestagent/network"
	"github.com/berthdesktop/berth/guestagent/registry"
	"github.com/berthdesktop/berth/guestagent/volume"
	"github.com/berthdesktop/berth/hostshare"
	"github.com/berthdesktop/berth/internal/version"
)

const (
	defaultDataRoot = "/var/lib/berth"
	defaultExecRoot = "/var/run/berth"
	defaultHost     = "unix:///var/run/docker.sock"
)

// engineFlags are the command-line options of `berth-agent engine`.
type engineFlags struct {
	dataRoot   string
	execRoot   string
	hosts      []string
	configFile string
	debug      bool
	logLevel   string
	// sharedPaths are the host folders bind sources must lie in
	// (comma-separated; empty allows every path).
	sharedPaths string
	// hostOS is the OS of the host the docker CLI runs on (Windows
	// sources are translated to VM paths).
	hostOS string
	// bridge and bip name the default bridge and its address (dockerd's
	// --bridge and --bip); daemon.json's "bridge" and "bip" also set them.
	bridge string
	bip    string
	// hostGatewayIP is what host-gateway and host.docker.internal
	// resolve to; hostDockerInternal adds host.docker.internal to every
	// container (the VM's engine, as Docker Desktop does).
	hostGatewayIP      netip.Addr
	hostDockerInternal bool
	containerProxies   bool            // give daemon.json's "proxies" to containers
	set                map[string]bool // flags given on the command line
}

type hostList struct{ v *[]string }

func (h hostList) String() string {
	if h.v == nil {
		return ""
	}
	return strings.Join(*h.v, ",")
}
func (h hostList) Set(s string) error { *h.v = append(*h.v, s); return nil }

// parseEngineFlags parses the engine's command line.
func parseEngineFlags(args []string, stderr io.Writer) (*engineFlags, error) {
	f := &engineFlags{set: map[string]bool{}}
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataRoot, "data-root", defaultDataRoot, "root directory of persistent engine state")
	fs.StringVar(&f.execRoot, "exec-root", defaultExecRoot, "root directory of runtime state")
	fs.Var(hostList{&f.hosts}, "H", "address to serve the API on: unix:///path or tcp://host:port (repeatable)")
	fs.Var(hostList{&f.hosts}, "host", "same as -H")
	fs.StringVar(&f.configFile, "config-file", "", "daemon configuration file (daemon.json)")
	fs.BoolVar(&f.debug, "debug", false, "debug logging")
	fs.BoolVar(&f.debug, "D", false, "same as --debug")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error, fatal")
	fs.StringVar(&f.bridge, "bridge", "", "name of the default bridge (default berth0)")
	fs.StringVar(&f.bip, "bip", "", "address and prefix of the default bridge (default 172.17.0.1/16)")
	fs.Func("host-gateway-ip", "address host-gateway and host.docker.internal resolve to (default: the bridge's)", func(v string) error {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", v)
		}
		f.hostGatewayIP = a
		return nil
	})
	fs.BoolVar(&f.hostDockerInternal, "host-docker-internal", false, "resolve host.docker.internal in every container")
	fs.BoolVar(&f.containerProxies, "container-proxies", false, "also give the daemon's proxies (daemon.json \"proxies\") to containers as HTTP_PROXY, HTTPS_PROXY and NO_PROXY")
	fs.StringVar(&f.sharedPaths, "shared-paths", "", "comma-separated host folders bind mounts may use (empty: every path)")
	fs.Func("host-os", "OS of the host whose folders are shared (linux, darwin, windows): with windows, bind sources such as C:\\x are that host's paths", func(v string) error {
		switch v {
		case "linux", "darwin", "windows":
			f.hostOS = v
			return nil
		}
		return fmt.Errorf("%q is not linux, darwin or windows", v)
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	fs.Visit(func(fl *flag.Flag) {
		name := fl.Name
		switch name {
		case "H", "host":
			name = "hosts"
		case "D":
			name = "debug"
		}
		f.set[name] = true
	})
	return f, nil
}

// settings are the merged flags and daemon.json.
type settings struct {
	dataRoot, execRoot string
	hosts              []string
	debug              bool
	level              slog.Level
	file               *daemonConfig
}

// mergeSettings combines flags and file as dockerd does: a directive given
// both ways is an error.
func mergeSettings(f *engineFlags, c *daemonConfig) (*settings, error) {
	if c == nil {
		c = &daemonConfig{set: map[string]bool{}}
	}
	var both []string
	conflictOf := func(key, flagVal, fileVal string) {
		both = append(both, fmt.Sprintf("%s: (from flag: %s, from file: %s)", key, flagVal, fileVal))
	}
	if f.set["data-root"] && c.set["data-root"] {
		conflictOf("data-root", f.dataRoot, c.DataRoot)
	}
	if f.set["exec-root"] && c.set["exec-root"] {
		conflictOf("exec-root", f.execRoot, c.ExecRoot)
	}
	if f.set["hosts"] && c.set["hosts"] {
		conflictOf("hosts", fmt.Sprint(f.hosts), fmt.Sprint(c.Hosts))
	}
	if f.set["debug"] && c.set["debug"] {
		conflictOf("debug", fmt.Sprint(f.debug), fmt.Sprint(c.Debug))
	}
	if f.set["bridge"] && c.set["bridge"] {
		conflictOf("bridge", f.bridge, c.Bridge)
	}
	if f.set["bip"] && c.set["bip"] {
		conflictOf("bip", f.bip, c.Bip)
	}
	if f.set["log-level"] && c.set["log-level"] {
		conflictOf("log-level", f.logLevel, c.LogLevel)
	}
	if len(both) > 0 {
		sort.Strings(both)
		return nil, fmt.Errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(both, ", "))
	}
	s := &settings{dataRoot: f.dataRoot, execRoot: f.execRoot, hosts: f.hosts, debug: f.debug || c.Debug, file: c}
	if c.set["data-root"] {
		s.dataRoot = c.DataRoot
	}
	if c.set["exec-root"] {
		s.execRoot = c.ExecRoot
	}
	if c.set["hosts"] {
		s.hosts = c.Hosts
	}
	if len(s.hosts) == 0 {
		s.hosts = []string{defaultHost}
	}
	if !filepath.IsAbs(s.dataRoot) || !filepath.IsAbs(s.execRoot) {
		return nil, fmt.Errorf("data-root and exec-root must be absolute paths (got %q, %q)", s.dataRoot, s.execRoot)
	}
	level := f.logLevel
	if level == "" {
		level = c.LogLevel
	}
	switch level {
	case "", "info":
		s.level = slog.LevelInfo
	case "debug":
		s.level = slog.LevelDebug
	case "warn":
		s.level = slog.LevelWarn
	case "error", "fatal":
		s.level = slog.LevelError
	default:
		return nil, fmt.Errorf("unable to parse logging level: %s", level)
	}
	if s.debug {
		s.level = slog.LevelDebug
	}
	return s, nil
}

// runEngine parses the engine's flags, wires the stores, runtime and API
// server, serves until SIGTERM/SIGINT, and shuts down cleanly.
func runEngine(args []string) error {
	fl, err := parseEngineFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var file *daemonConfig
	if fl.configFile != "" {
		if file, err = loadDaemonConfig(fl.configFile); err != nil {
			return err
		}
	}
	s, err := mergeSettings(fl, file)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.level}))
	slog.SetDefault(log)
	began := time.Now()
	step := func(name string) {
		log.Debug("engine: startup step done", "step", name, "ms", time.Since(began).Milliseconds())
	}
	if os.Geteuid() != 0 {
		return errors.New("the engine needs to run as root")
	}
	for _, d := range []string{s.dataRoot, s.execRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}

	// The networks (netlink and nftables work) and the volumes open
	// beside the image stores (mostly disk work): in a VM under emulation
	// the engine's start is most of the boot after the kernel's.
	type netsResult struct {
		m   *network.Manager
		err error
	}
	netsCh := make(chan netsResult, 1)
	go func() {
		m, err := openNetworks(fl, s.file, s.dataRoot, log)
		netsCh <- netsResult{m, err}
	}()
	type volsResult struct {
		v   *volume.Store
		err error
	}
	volsCh := make(chan volsResult, 1)
	go func() {
		v, err := volume.Open(filepath.Join(s.dataRoot, "volumes"), log)
		volsCh <- volsResult{v, err}
	}()
	// Whatever fails below, the networks opened are closed.
	var nets *network.Manager
	netsTaken := false
	takeNets := func() {
		if netsTaken {
			return
		}
		netsTaken = true
		r := <-netsCh
		if r.err != nil {
			// Containers with --network none or host still work; others
			// fail to create with the engine's message.
			log.Error("networks are unavailable", "err", r.err)
			return
		}
		nets = r.m
	}
	defer func() {
		takeNets()
		if nets != nil {
			nets.Close()
		}
	}()

	reg, err := registry.New(registryProxies(s.file.registryConfig("berth/"+version.Version), fl, s.file))
	if err != nil {
		return err
	}
	defer reg.Close()
	step("registry")
	w, err := wire(s.dataRoot, s.execRoot, reg, log)
	if err != nil {
		return err
	}
	defer w.close()
	step("stores")
	shares, err := hostshare.ParseList(fl.sharedPaths)
	if err != nil {
		return fmt.Errorf("--shared-paths: %w", err)
	}
	if fl.hostOS != "" {
		shares = shares.ForHost(fl.hostOS)
	}
	// Containers may bind the engine's own API sockets (docker-in-docker
	// clients), which live in the VM, not in a shared folder.
	for _, h := range s.hosts {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			shares = shares.WithInternal(p)
		}
	}
	vr := <-volsCh
	if vr.err != nil {
		return vr.err
	}
	vols := vr.v
	step("volumes")
	takeNets()
	step("networks")
	cfg := ctrengine.Config{
		Root:               s.dataRoot,
		ExecRoot:           s.execRoot,
		Images:             w.images,
		Runtime:            w.runtime,
		DefaultSpec:        w.defaultSpec,
		Limits:             w.limits,
		CountImages:        w.countImages,
		ReleaseLeftover:    w.release,
		InsecureRegistries: s.file.InsecureRegistries,
		RegistryMirrors:    s.file.RegistryMirrors,
		Volumes:            vols,
		Shares:             shares,
		Network:            networker(nets),
		StartDNS:           startDNS(log),
		HostGatewayIP:      hostGateway(fl, s.file, nets),
		HostGatewayName:    fl.hostDockerInternal,
		ContainerProxy:     containerProxies(fl, s.file),
		Labels:             s.file.Labels,
		Init:               s.file.Init,
		Debug:              s.debug,
		ServerVersion:      version.Version,
		Logger:             log,
	}
	if s.file.LogOpts != nil {
		if _, err := logs.ParseOptions(s.file.LogOpts); err != nil {
			return fmt.Errorf("log-opts: %w", err)
		}
		cfg.LogOpts = s.file.LogOpts
	}
	cfg.DefaultShmSize = s.file.DefaultShmSize
	names := make([]string, 0, len(s.file.DefaultUlimits))
	for n := range s.file.DefaultUlimits {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := s.file.DefaultUlimits[n]
		cfg.DefaultUlimits = append(cfg.DefaultUlimits, (*container.Ulimit)(&units.Ulimit{Name: u.Name, Hard: u.Hard, Soft: u.Soft}))
	}
	eng, err := ctrengine.New(cfg)
	if err != nil {
		return err
	}
	w.setUsage(eng)
	step("engine")
	bld, err := newBuilder(s.dataRoot, eng, w.imageBackend, log)
	if err != nil {
		return err
	}
	defer bld.Close()
	vols.SetEventSink(eng.PublishVolumeEvent)
	step("builder")

	srv := api.New(api.Config{
		EngineVersion: version.Version,
		System:        eng,
		Containers:    eng,
		Exec:          eng,
		Images:        w.imageBackend,
		Registry:      w.registry,
		Volumes:       vols,
		Archive:       eng,
		Builder:       bld,
		Networks:      eng,
		Logger:        log,
	})
	var listeners []net.Listener
	var sockets []*ownSocket
	// releaseSockets unlinks the socket files while their listeners still
	// accept, so that no newer engine can have bound the paths yet.
	releaseSockets := func() {
		for _, so := range sockets {
			if err := so.remove(); err != nil {
				log.Warn("remove API socket", "err", err)
			}
		}
		sockets = nil
	}
	closeListeners := func() {
		releaseSockets()
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, h := range s.hosts {
		l, err := api.Listen(h)
		if err != nil {
			closeListeners()
			return err
		}
		listeners = append(listeners, l)
		if ul, ok := l.(*net.UnixListener); ok {
			so, err := own(ul)
			if err != nil {
				closeListeners()
				return err
			}
			sockets = append(sockets, so)
		}
	}
	step("listen")
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eng.Restore(ctx)

	step("restore")
	serveErr := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			if err := srv.Serve(l); err != nil {
				serveErr <- err
			}
		}(l)
	}
	for i, l := range listeners {
		if err := waitReady(l); err != nil {
			log.Warn("API not answering", "addr", s.hosts[i], "err", err)
			continue
		}
		log.Info("API listen on " + listenAddr(s.hosts[i], l))
	}

	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case err := <-serveErr:
		log.Error("API server failed", "err", err)
	}
	// The API stops accepting at once (requests and attach sessions in
	// flight go on, so that attached clients see their containers exit);
	// then the containers stop (each with its stop signal and timeout, in
	// parallel); the API gets a grace after that to finish what is left.
	releaseSockets()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Shutdown(sctx) }()
	eng.Shutdown(ctx)
	grace := time.AfterFunc(5*time.Second, scancel)
	if err := <-srvDone; err != nil {
		log.Warn("API server shutdown", "err", err)
	}
	grace.Stop()
	closeListeners()
	wg.Wait()
	log.Info("engine stopped")
	return nil
}

// ownSocket is a unix socket file this engine bound. It is removed only
// while the path still names that file, and before the listener stops
// accepting: a newer engine binds the path only once nothing answers
// there (see api.Listen), so its socket is never the one removed.
type ownSocket struct {
	path string
	file os.FileInfo
}

// own takes the removal of l's socket file from the listener (whose Close
// would unlink the path, whoever's socket it names by then) and records
// the file it bound.
func own(l *net.UnixListener) (*ownSocket, error) {
	path := l.Addr().String()
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("check API socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	return &ownSocket{path: path, file: fi}, nil
}

// sameSocket reports whether a and b are the same file: device and inode,
// and the change time, as an inode number freed by an unlink may be reused.
func sameSocket(a, b os.FileInfo) bool {
	if !os.SameFile(a, b) {
		return false
	}
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	return okA && okB && sa.Ctim == sb.Ctim
}

// remove deletes the socket file if it is still the one bound here. Call
// it while the listener still accepts.
func (o *ownSocket) remove() error {
	fi, err := os.Lstat(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check API socket %s: %w", o.path, err)
	}
	if !sameSocket(fi, o.file) {
		return nil // not ours any more
	}
	if err := os.Remove(o.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove API socket %s: %w", o.path, err)
	}
	return nil
}

// listenAddr names a listener as dockerd's "API listen on" line does.
func listenAddr(host string, l net.Listener) string {
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p
	}
	return l.Addr().String()
}

// waitReady answers once GET /_ping succeeds on l.
func waitReady(l net.Listener) error {
	network, addr := l.Addr().Network(), l.Addr().String()
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}},
	}
	defer client.CloseIdleConnections()
	var last error
	for i := 0; i < 100; i++ {
		resp, err := client.Get("http://engine/_ping")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("ping %s: %w", addr, last)
}
