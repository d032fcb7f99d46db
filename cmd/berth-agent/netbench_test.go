//go:build linux

package main

// `make bench`, network part: Berth's default bridge against Debian's
// dockerd with a bridge of its own, in the same run. Three parts:
//
//   - container start with networking: `docker run --rm IMAGE true` on the
//     default bridge, alternating, medians and the ratio;
//   - published-port throughput: bytes sent from here to a TCP sink in a
//     Berth container, once through -p 127.0.0.1:PORT:5001 and once to the
//     container's own address, MB/s of both and the ratio;
//   - a leak check: 1,000 `docker run --rm IMAGE true` on Berth's default
//     bridge, counting veths, the engine's nftables rules, mounts under its
//     root, its containers' cgroups, the paths under its data and exec
//     roots and the engine's open files before and after.
//
// dockerd's bridge is one the benchmark makes and removes; dockerd runs on
// it with peerFlags otherwise, so it touches neither the firewall nor
// forwarding.
//
// It prints figures and targets and asserts nothing about speed; a leak is
// a failure.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthdesktop/berth/guestagent/cgroups"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

const (
	netBenchStartRuns  = 15        // docker run --rm IMAGE true per engine
	netBenchBytes      = 256 << 20 // sent per throughput repetition
	netBenchReps       = 7         // throughput repetitions per path
	netBenchCycles     = 1000      // docker run --rm IMAGE true of the leak check
	netBenchWorkers    = 2         // the leak check's cycles in parallel
	netBenchSinkPort   = 5001      // the sink's port in its container
	netBenchBlock      = 64 << 10  // the sink's dd block size; netBenchBytes is a multiple
	netBenchSettleTime = 15 * time.Second
)

// netBenchSink is the sink's per-connection program: it reads the
// connection to its end in whole blocks and answers with dd's record
// counts ("N+M records in", M partial blocks). Busybox's wc -c counts a
// byte at a time, too slow to be the sink.
var netBenchSink = fmt.Sprintf("#!/bin/sh\nexec dd of=/dev/null bs=%d iflag=fullblock 2>&1\n", netBenchBlock)

// BenchmarkNetworkVsDockerd is `make bench`'s network part.
func BenchmarkNetworkVsDockerd(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	if why := haveDockerd(); why != "" {
		b.Skip("the benchmark's peer is Debian's dockerd: " + why)
	}
	berth, err := startEngine(filepath.Join(workDir, "bench-net-berth"))
	if err != nil {
		b.Fatal(err)
	}
	defer berth.cleanup()
	defer func() { _ = berth.stop() }()
	peerBridge, err := netBenchBridge()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if l, err := netlink.LinkByName(peerBridge.name); err == nil {
			_ = netlink.LinkDel(l)
		}
	}()
	peer, err := startBridgedDockerd(filepath.Join(workDir, "bench-net-dockerd"), peerBridge.name)
	if err != nil {
		b.Fatal(err)
	}
	defer peer.cleanup()
	defer func() { _ = peer.stop() }()
	engines := []*engine{berth, peer}
	for _, e := range engines {
		e.timed(b, "load", "-q", "-i", imageTar)
		// One unmeasured run each warms caches and makes whatever the
		// engine sets up on first use of the bridge.
		e.timed(b, "run", "--rm", testImage, "true")
	}
	base := netBenchSnapshot(b, berth)

	for i := 0; i < b.N; i++ {
		// 1. Container start with networking.
		runs := map[*engine][]time.Duration{}
		for n := 0; n < netBenchStartRuns; n++ {
			for _, e := range engines {
				runs[e] = append(runs[e], e.timed(b, "run", "--rm", testImage, "true"))
			}
		}
		rb, rd := median(runs[berth]), median(runs[peer])
		fmt.Fprintf(os.Stdout, "\n`docker run --rm IMAGE true` on the default bridge network, %d runs each, alternating:\n", netBenchStartRuns)
		fmt.Fprintf(os.Stdout, "  berth   median %s (bridge %s)\n", ms(rb), berth.bridge)
		fmt.Fprintf(os.Stdout, "  dockerd median %s (dockerd %s, own --data-root, --exec-root, --pidfile and socket; bridge %s %s made by the benchmark)\n",
			ms(rd), strings.Join(netBenchPeerFlags(peerBridge.name), " "), peerBridge.name, peerBridge.addr)
		fmt.Fprintf(os.Stdout, "  ratio berth/dockerd %.2f (target at most 0.50)\n", float64(rb)/float64(rd))
		b.ReportMetric(float64(rb.Microseconds())/1000, "berth-netrun-ms")
		b.ReportMetric(float64(rd.Microseconds())/1000, "dockerd-netrun-ms")
		b.ReportMetric(float64(rb)/float64(rd), "netrun-ratio")

		// 2. Published-port throughput.
		pub, direct, sinkCg := netBenchThroughput(b, berth)
		fmt.Fprintf(os.Stdout, "TCP throughput into a Berth container, %d MiB per run, %d runs each, alternating (MB = 10^6 bytes):\n",
			netBenchBytes>>20, netBenchReps)
		fmt.Fprintf(os.Stdout, "  published 127.0.0.1:PORT->5001 median %.0f MB/s\n", pub)
		fmt.Fprintf(os.Stdout, "  container address :5001       median %.0f MB/s\n", direct)
		fmt.Fprintf(os.Stdout, "  ratio published/direct %.2f (target at least 0.80)\n", pub/direct)
		b.ReportMetric(pub, "published-MB/s")
		b.ReportMetric(direct, "direct-MB/s")
		b.ReportMetric(pub/direct, "published-ratio")

		// 3. Leak check.
		before := netBenchSnapshot(b, berth)
		took, ids := netBenchRunCycles(b, berth, b.TempDir())
		after, settled := netBenchSettle(b, berth, base)
		fmt.Fprintf(os.Stdout, "leak check: %d x `docker run --rm IMAGE true` on Berth's default bridge, %d in parallel, took %s (%.1f runs/s)\n",
			netBenchCycles, netBenchWorkers, took.Round(time.Millisecond), float64(netBenchCycles)/took.Seconds())
		netBenchReport(b, berth.bridge, base, before, after, settled)
		if sinkCg == "" {
			fmt.Fprintf(os.Stdout, "  the sink container's cgroup was not <parent>/<container ID>: its cycles' groups not checked one by one\n")
		} else {
			cgLeft := netBenchCgroupsLeft(filepath.Dir(sinkCg), ids)
			fmt.Fprintf(os.Stdout, "  cgroups of the %d cycles' containers left in %s (where the sink's was): %d\n", len(ids), filepath.Dir(sinkCg), len(cgLeft))
			if len(cgLeft) > 0 {
				b.Errorf("leak: the cgroups of %d of the cycles' containers are still there, e.g. %s", len(cgLeft), cgLeft[0])
			}
		}
		fmt.Fprintln(os.Stdout)
		b.ReportMetric(took.Seconds(), "leak-cycles-s")
	}
	if b.Failed() {
		b.Log(berth.logTail(0, 60))
	}
}

// netBenchBridgeInfo is the Linux bridge made for the peer dockerd.
type netBenchBridgeInfo struct {
	name string
	addr netip.Prefix
}

// netBenchBridge makes the peer's Linux bridge btpeer<pid> with a /24 of
// 10.196-199.x.0 that no interface of the machine is in, and brings it up.
func netBenchBridge() (netBenchBridgeInfo, error) {
	name := fmt.Sprintf("btpeer%d", os.Getpid()%10000)
	if l, err := netlink.LinkByName(name); err == nil {
		// Left by a killed run of this same pid's number.
		_ = netlink.LinkDel(l)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netBenchBridgeInfo{}, fmt.Errorf("list addresses: %w", err)
	}
	var pick netip.Prefix
	for second := 196; second < 200 && !pick.IsValid(); second++ {
		for k := 0; k < 250; k++ {
			third := (os.Getpid() + k) % 250
			p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", second, third))
			if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
				ip, ok := netip.AddrFromSlice(a.IP.To4())
				ones, _ := a.Mask.Size()
				return ok && (p.Masked().Contains(ip) || netip.PrefixFrom(ip, ones).Masked().Contains(p.Addr()))
			}) {
				pick = p
				break
			}
		}
	}
	if !pick.IsValid() {
		return netBenchBridgeInfo{}, fmt.Errorf("no free /24 in 10.196.0.0/14 for the peer's bridge")
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	br := &netlink.Bridge{LinkAttrs: la}
	if err := netlink.LinkAdd(br); err != nil {
		return netBenchBridgeInfo{}, fmt.Errorf("create bridge %s: %w", name, err)
	}
	ip := pick.Addr().As4()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(ip[:]), Mask: net.CIDRMask(pick.Bits(), 32)}}
	if err := netlink.AddrAdd(br, a); err != nil {
		_ = netlink.LinkDel(br)
		return netBenchBridgeInfo{}, fmt.Errorf("address %s on %s: %w", pick, name, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		_ = netlink.LinkDel(br)
		return netBenchBridgeInfo{}, fmt.Errorf("bring up %s: %w", name, err)
	}
	return netBenchBridgeInfo{name: name, addr: pick}, nil
}

// netBenchPeerFlags are the peer's flags with bridge as its default
// bridge: like peerFlags, it touches neither the firewall nor forwarding.
func netBenchPeerFlags(bridge string) []string {
	var flags []string
	for _, f := range peerFlags {
		if f == "--bridge=none" {
			f = "--bridge=" + bridge
		}
		flags = append(flags, f)
	}
	return flags
}

// startBridgedDockerd is startDockerd with the default bridge network on
// bridge: dockerd, its own data and exec roots, pidfile and socket.
func startBridgedDockerd(root, bridge string) (*engine, error) {
	e := &engine{
		root:      root,
		dataRoot:  filepath.Join(root, "data"),
		execRoot:  filepath.Join(root, "exec"),
		sock:      filepath.Join(root, "dockerd.sock"),
		logPath:   filepath.Join(root, "dockerd.log"),
		cliConfig: filepath.Join(root, "cli"),
		peer:      true,
	}
	for _, d := range []string{root, e.cliConfig} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", d, err)
		}
	}
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open dockerd log: %w", err)
	}
	defer logf.Close()
	args := append([]string{
		"--data-root", e.dataRoot, "--exec-root", e.execRoot,
		"-H", "unix://" + e.sock, "--pidfile", filepath.Join(root, "dockerd.pid"),
	}, netBenchPeerFlags(bridge)...)
	e.cmd = exec.Command("dockerd", args...)
	e.cmd.Stdout = logf
	e.cmd.Stderr = logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	e.exited = make(chan struct{})
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := e.ping()
		if err == nil {
			return e, nil
		}
		if time.Now().After(deadline) {
			e.kill()
			return nil, fmt.Errorf("dockerd did not answer /_ping on %s: %w\n%s", e.sock, err, e.logTail(0, 40))
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("dockerd exited before answering /_ping: %v\n%s", e.waitErr, e.logTail(0, 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// netBenchOut runs the docker CLI against e and returns its trimmed
// stdout; a non-zero exit fails the benchmark.
func netBenchOut(b *testing.B, e *engine, args ...string) string {
	b.Helper()
	r := e.docker(nil, args...)
	if r.code != 0 {
		b.Fatalf("%v\n%s", r, e.logTail(0, 30))
	}
	return strings.TrimSpace(r.stdout)
}

// netBenchThroughput runs the sink in a container on e's default bridge,
// published on a loopback port, and returns the median MB/s through the
// published port and to the container's address, alternating, and the
// sink's cgroup when it is named by the container's ID ("" otherwise).
func netBenchThroughput(b *testing.B, e *engine) (published, direct float64, cg string) {
	b.Helper()
	port := loopbackPort(b)
	script := strings.ReplaceAll(netBenchSink, "\n", `\n`)
	id := netBenchOut(b, e, "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:%d", port, netBenchSinkPort), testImage,
		"sh", "-c", fmt.Sprintf("printf '%s' > /sink && chmod +x /sink && exec nc -ll -p %d -e /sink", script, netBenchSinkPort))
	defer e.docker(nil, "rm", "-f", id)
	ip := netBenchOut(b, e, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", id)
	if _, err := netip.ParseAddr(ip); err != nil {
		b.Fatalf("sink container's address %q: %v", ip, err)
	}
	cg = netBenchCgroupOf(netBenchOut(b, e, "inspect", "-f", "{{.State.Pid}}", id))
	if cg != "" && filepath.Base(cg) != id {
		cg = ""
	}
	targets := []string{fmt.Sprintf("127.0.0.1:%d", port), net.JoinHostPort(ip, strconv.Itoa(netBenchSinkPort))}
	// Until both paths carry a small transfer whole.
	deadline := time.Now().Add(waitTimeout)
	for _, t := range targets {
		for {
			_, err := netBenchSend(t, netBenchBlock)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("sink at %s: %v\n%s", t, err, e.logTail(0, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rates := make([][]time.Duration, len(targets))
	for r := 0; r < netBenchReps; r++ {
		for i, t := range targets {
			d, err := netBenchSend(t, netBenchBytes)
			if err != nil {
				b.Fatalf("send %d MiB to %s: %v", netBenchBytes>>20, t, err)
			}
			rates[i] = append(rates[i], d)
		}
	}
	mbps := func(d time.Duration) float64 { return float64(netBenchBytes) / 1e6 / d.Seconds() }
	return mbps(median(rates[0])), mbps(median(rates[1])), cg
}

var netBenchRecords = regexp.MustCompile(`(\d+)\+(\d+) records in`)

// netBenchSend sends n bytes (a multiple of netBenchBlock) to addr, closes
// its side and reads the sink's answer, which must count n bytes; it
// returns the time from connecting to the answer.
func netBenchSend(addr string, n int) (time.Duration, error) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*31 + i>>9)
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(cmdTimeout))
	for left := n; left > 0; {
		chunk := buf[:min(left, len(buf))]
		if _, err := c.Write(chunk); err != nil {
			return 0, err
		}
		left -= len(chunk)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	answer, err := io.ReadAll(c)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	m := netBenchRecords.FindSubmatch(answer)
	if m == nil {
		return 0, fmt.Errorf("sink answered %q", answer)
	}
	full, _ := strconv.Atoi(string(m[1]))
	partial, _ := strconv.Atoi(string(m[2]))
	if full*netBenchBlock != n || partial != 0 {
		return 0, fmt.Errorf("sink received %d+%d blocks of %d bytes, sent %d bytes", full, partial, netBenchBlock, n)
	}
	return d, nil
}

// netBenchRunCycles runs netBenchCycles `docker run --rm IMAGE true` on e's
// default bridge with netBenchWorkers at a time, and returns how long that
// took and the containers' IDs (written by --cidfile into dir).
func netBenchRunCycles(b *testing.B, e *engine, dir string) (time.Duration, []string) {
	b.Helper()
	var next atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure string
	start := time.Now()
	for w := 0; w < netBenchWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > netBenchCycles {
					return
				}
				cid := filepath.Join(dir, fmt.Sprintf("%d.cid", n))
				if r := e.docker(nil, "run", "--rm", "--cidfile", cid, testImage, "true"); r.code != 0 {
					mu.Lock()
					if failure == "" {
						failure = fmt.Sprintf("cycle %d: %v", n, r)
					}
					mu.Unlock()
					next.Store(netBenchCycles)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if failure != "" {
		b.Fatalf("%s\n%s", failure, e.logTail(0, 30))
	}
	var ids []string
	for n := 1; n <= netBenchCycles; n++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.cid", n)))
		if err != nil {
			b.Fatalf("container ID of cycle %d: %v", n, err)
		}
		ids = append(ids, strings.TrimSpace(string(data)))
	}
	return took, ids
}

// netBenchCounts is what the leak check counts.
type netBenchCounts struct {
	containers  int // docker ps -aq
	vethsAll    int // /sys/class/net/veth*, every engine's on this machine
	vethsBridge int // veths whose master is the engine's bridge
	nftAll      int // rules in every berth_* table on this machine
	nftEngine   int // rules in the engine's own berth_*<bridge> tables
	nftTables   string
	mounts      int // the engine's mountinfo entries under its root
	cgroupsAll  int // groups under the cgroup parent, every engine's
	cgParent    string
	entries     map[string]bool // paths under the data and exec roots, depth 3 at most
	fds         int             // the engine process's open files
	threads     int             // the engine process's threads
}

// netBenchSnapshot counts e's networking, mounts and cgroups now.
func netBenchSnapshot(b *testing.B, e *engine) netBenchCounts {
	b.Helper()
	var c netBenchCounts
	c.containers = len(nonEmptyLines(netBenchOut(b, e, "ps", "-aq")))
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		b.Fatal(err)
	}
	br, err := netlink.LinkByName(e.bridge)
	if err != nil {
		b.Fatalf("engine bridge %s: %v", e.bridge, err)
	}
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), "veth") {
			c.vethsAll++
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "veth" && l.Attrs().MasterIndex == br.Attrs().Index {
			c.vethsBridge++
		}
	}
	c.nftAll, c.nftEngine, c.nftTables = netBenchRules(b, e.bridge)
	pid := e.cmd.Process.Pid
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		b.Fatal(err)
	}
	mounts, err := parseMountinfo(string(data))
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range mounts {
		if strings.HasPrefix(m.Point, e.root+"/") {
			c.mounts++
		}
	}
	c.cgParent = netBenchCgroupParent()
	if c.cgParent != "" {
		ents, _ := os.ReadDir(c.cgParent)
		for _, ent := range ents {
			if ent.IsDir() {
				c.cgroupsAll++
			}
		}
	}
	c.entries = map[string]bool{}
	for _, root := range []string{e.dataRoot, e.execRoot} {
		netBenchWalk(root, 3, c.entries)
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		c.fds = len(ents)
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		c.threads = len(ents)
	}
	return c
}

// netBenchWalk adds the paths below dir to into, depth levels down.
func netBenchWalk(dir string, depth int, into map[string]bool) {
	if depth == 0 {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		into[p] = true
		if ent.IsDir() {
			netBenchWalk(p, depth-1, into)
		}
	}
}

// netBenchNew returns the paths of now that base has not, sorted.
func netBenchNew(base, now map[string]bool) []string {
	var out []string
	for p := range now {
		if !base[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// netBenchRules counts the rules in every chain of the machine's berth_*
// tables, and of those the engine's own: the tables whose name ends in
// "_" and its bridge.
func netBenchRules(b *testing.B, bridge string) (all, own int, names string) {
	b.Helper()
	conn, err := nftables.New()
	if err != nil {
		b.Fatalf("nftables: %v", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		b.Fatalf("list nftables chains: %v", err)
	}
	var tables []string
	for _, ch := range chains {
		if !strings.HasPrefix(ch.Table.Name, "berth_") {
			continue
		}
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			b.Fatalf("rules of %s %s: %v", ch.Table.Name, ch.Name, err)
		}
		all += len(rules)
		if strings.HasSuffix(ch.Table.Name, "_"+bridge) {
			own += len(rules)
			if !slices.Contains(tables, ch.Table.Name) {
				tables = append(tables, ch.Table.Name)
			}
		}
	}
	slices.Sort(tables)
	return all, own, strings.Join(tables, ",")
}

// netBenchCgroupParent is the group the engine makes its containers'
// groups in: "berth" below the cgroup2 mount (wire.go), or "" without
// cgroup2.
func netBenchCgroupParent() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	mp, err := cgroups.FindMount(f)
	if err != nil {
		return ""
	}
	p := filepath.Join(mp, "berth")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// netBenchCgroupOf is the absolute path of the cgroup2 group of process
// pid, or "".
func netBenchCgroupOf(pid string) string {
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return ""
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	mp, err := cgroups.FindMount(f)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rel, ok := strings.CutPrefix(l, "0::"); ok && rel != "/" {
			return filepath.Join(mp, rel)
		}
	}
	return ""
}

// netBenchCgroupsLeft returns the groups of ids still under parent.
func netBenchCgroupsLeft(parent string, ids []string) []string {
	if parent == "" {
		return nil
	}
	var left []string
	for _, id := range ids {
		p := filepath.Join(parent, id)
		if _, err := os.Stat(p); err == nil {
			left = append(left, p)
		}
	}
	return left
}

// netBenchLeaked names the engine's own counts that differ from base.
func netBenchLeaked(base, now netBenchCounts) []string {
	var out []string
	for _, c := range []struct {
		what      string
		base, now int
	}{
		{"containers", base.containers, now.containers},
		{"veths on the engine's bridge", base.vethsBridge, now.vethsBridge},
		{"nftables rules in " + now.nftTables, base.nftEngine, now.nftEngine},
		{"mounts under the engine's root", base.mounts, now.mounts},
	} {
		if c.now != c.base {
			out = append(out, fmt.Sprintf("%s: %d, was %d", c.what, c.now, c.base))
		}
	}
	if n := netBenchNew(base.entries, now.entries); len(n) > 0 {
		out = append(out, fmt.Sprintf("%d new paths under the data and exec roots, e.g. %s", len(n), strings.Join(n[:min(len(n), 5)], " ")))
	}
	return out
}

// netBenchSettle snapshots e until its own counts are back at base or
// netBenchSettleTime has passed (a container removed by --rm may still be
// torn down for a moment after the CLI returns), and returns the last
// snapshot and how long that took.
func netBenchSettle(b *testing.B, e *engine, base netBenchCounts) (netBenchCounts, time.Duration) {
	b.Helper()
	start := time.Now()
	for {
		now := netBenchSnapshot(b, e)
		if len(netBenchLeaked(base, now)) == 0 || time.Since(start) > netBenchSettleTime {
			return now, time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// netBenchReport prints the leak check's counts and fails on a leak of
// the engine's own.
func netBenchReport(b *testing.B, bridge string, base, before, after netBenchCounts, settled time.Duration) {
	b.Helper()
	var w bytes.Buffer
	fmt.Fprintf(&w, "  %-52s %8s %8s %8s\n", "", "at start", "before", "after")
	row := func(what string, f func(netBenchCounts) int) {
		fmt.Fprintf(&w, "  %-52s %8d %8d %8d\n", what, f(base), f(before), f(after))
	}
	row("containers (docker ps -aq)", func(c netBenchCounts) int { return c.containers })
	row("veths on the engine's bridge "+bridge, func(c netBenchCounts) int { return c.vethsBridge })
	row("nftables rules in "+after.nftTables, func(c netBenchCounts) int { return c.nftEngine })
	row("mounts under the engine's root", func(c netBenchCounts) int { return c.mounts })
	row("paths under the data and exec roots (3 levels)", func(c netBenchCounts) int { return len(c.entries) })
	row("  of which not there at start", func(c netBenchCounts) int { return len(netBenchNew(base.entries, c.entries)) })
	row("engine open files", func(c netBenchCounts) int { return c.fds })
	row("engine threads", func(c netBenchCounts) int { return c.threads })
	row("machine-wide, other engines too: /sys/class/net/veth*", func(c netBenchCounts) int { return c.vethsAll })
	row("machine-wide: rules in all berth_* tables", func(c netBenchCounts) int { return c.nftAll })
	row("machine-wide: groups under "+after.cgParent, func(c netBenchCounts) int { return c.cgroupsAll })
	if settled > time.Second {
		fmt.Fprintf(&w, "  (the after counts were taken %s after the last cycle)\n", settled.Round(time.Millisecond))
	}
	fmt.Fprint(os.Stdout, w.String())
	for _, l := range netBenchLeaked(base, after) {
		b.Errorf("leak after the benchmark's containers were removed: %s", l)
	}
	// Open files that grew with the cycles rather than by a few.
	if after.fds-before.fds >= netBenchCycles/10 {
		b.Errorf("leak: the engine's open files grew from %d to %d over %d cycles", before.fds, after.fds, netBenchCycles)
	}
}
