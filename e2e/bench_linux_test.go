//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/desktop"
	"github.com/berthdesktop/berth/app/machine"
	"github.com/berthdesktop/berth/app/machine/qemu"
	"github.com/berthdesktop/berth/guestagent/pid1"
)

// rssMiB is the resident memory of a process (VmRSS), in MiB.
func rssMiB(b testing.TB, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("VmRSS of %d: %q", pid, v)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// push writes n zero bytes to conn, half-closes, and waits for the other
// end to close; it returns the time taken.
func push(b testing.TB, conn net.Conn, n int64) time.Duration {
	defer conn.Close()
	t0 := time.Now()
	if _, err := io.Copy(conn, io.LimitReader(zeros{}, n)); err != nil {
		b.Fatal(err)
	}
	conn.(interface{ CloseWrite() error }).CloseWrite()
	io.Copy(io.Discard, conn)
	return time.Since(t0)
}

// BenchmarkVM measures the VM as users meet it (run once: make bench):
//   - boot-s: `berth start` to docker answering, median of 5 (the service
//     process, QEMU, the guest to its engine, the forwarded socket);
//   - guest-used-MiB: guest memory in use 10 s after boot (as the agent's
//     ready line counts it), berth-rss-MiB and qemu-rss-MiB the host's
//     resident memory of the service process and of QEMU then;
//   - published-MiB/s and channel-MiB/s: 64 MiB from the host into a
//     container, through its published port, and straight through the
//     channel's tunnel port to the container's address.
func BenchmarkVM(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e := newEnv(b, ctx)

	var boots []time.Duration
	for i := range 5 {
		t0 := time.Now()
		e.start(b)
		boots = append(boots, time.Since(t0))
		if i < 4 {
			e.stop(b)
		}
	}
	slices.Sort(boots)
	b.ReportMetric(boots[len(boots)/2].Seconds(), "boot-s")

	time.Sleep(10 * time.Second)
	ds := e.status(b)
	meminfo, err := e.run(e.berth, "shell", "cat", "/proc/meminfo")
	if err != nil {
		b.Fatalf("berth shell cat /proc/meminfo: %v\n%s", err, meminfo)
	}
	b.ReportMetric(float64(pid1.MemoryInUse(strings.ReplaceAll(meminfo, "\r", "")))/(1<<20), "guest-used-MiB")
	b.ReportMetric(rssMiB(b, ds.PID), "berth-rss-MiB")
	b.ReportMetric(rssMiB(b, ds.VMPID), "qemu-rss-MiB")
	e.stop(b)

	// The service in this process, on the same home, so that the channel
	// can be dialed beside the published port.
	settings := desktop.Settings{CPUs: desktop.DefaultCPUs, MemoryMiB: desktop.DefaultMemoryMiB, DiskBytes: desktop.DefaultDiskBytes,
		VMDir: filepath.Join(repoRoot(b), "build", "vm", runtime.GOARCH), Shares: []string{e.home}}
	cfg := desktop.MachineConfig(e.layout, settings)
	svc := desktop.NewService(desktop.Options{
		NewVM:        func() (machine.VM, error) { return qemu.Driver{}.New(cfg) },
		DockerSocket: e.layout.DockerSocket(),
		SkipContext:  true,
	})
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop(context.Background())
	e.loadImage(b)
	hostPort := freePort(b)
	id := e.mustDocker(b, "run", "-d", "-p", strconv.Itoa(hostPort)+":80", image, "nc", "-ll", "-p", "80", "-e", "sh", "-c", "cat >/dev/null")
	defer e.docker("rm", "-f", id)
	ip := e.mustDocker(b, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id)
	if ip == "" || ip == "invalid IP" {
		// The figures above stay reported.
		b.Logf("the engine gave the container no network address (%q): no throughput figures", ip)
		return
	}
	const total = 64 << 20
	var pub net.Conn
	deadline := time.Now().Add(time.Minute)
	for {
		pub, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.Fatalf("published port %d: %v", hostPort, err)
	}
	mibs := func(d time.Duration) float64 { return float64(total) / (1 << 20) / d.Seconds() }
	var published, channel []time.Duration
	published = append(published, push(b, pub, total))
	for range 2 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
		if err != nil {
			b.Fatal(err)
		}
		published = append(published, push(b, c, total))
	}
	for range 3 {
		c, err := svc.VM().Dial(ctx, machine.PortTunnel)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "tcp "+net.JoinHostPort(ip, "80")+"\n")
		channel = append(channel, push(b, c, total))
	}
	slices.Sort(published)
	slices.Sort(channel)
	b.ReportMetric(mibs(published[1]), "published-MiB/s")
	b.ReportMetric(mibs(channel[1]), "channel-MiB/s")
}
