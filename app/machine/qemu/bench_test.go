package qemu

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/machine"
)

// bootAgent boots the VM image and waits for the control API to answer.
func bootAgent(b *testing.B, cfg machine.Config) (*VM, *hostlink.Client) {
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		b.Fatal(err)
	}
	c := hostlink.NewClient(vm)
	waitAgent(b, ctx, vm, c, cfg.ConsoleLogPath)
	return vm, c
}

// benchImage is the VM image for the benchmarks; they need root and QEMU.
func benchImage(b *testing.B) (kernel, initrd string) {
	requireRoot(b)
	needQEMU(b)
	return vmImage(b)
}

// BenchmarkBoot alternates, in each iteration, a floor boot (the same
// kernel with a busybox init that powers off at once: QEMU start to exit)
// and a boot of the VM image to the agent's control API answering over the
// channel; it reports the median of each and their ratio, so that load on
// the host weighs on both alike.
func BenchmarkBoot(b *testing.B) {
	kernel, initrd := benchImage(b)
	floorInitrd := busyboxInitrd(b)
	var floors, agents []time.Duration
	for b.Loop() {
		t0 := time.Now()
		vm, err := Driver{}.newVM(bootConfig(b, kernel, floorInitrd, "berthtest=poweroff"))
		if err != nil {
			b.Fatal(err)
		}
		if err := vm.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		<-vm.Done()
		floors = append(floors, time.Since(t0))

		t0 = time.Now()
		avm, c := bootAgent(b, bootConfig(b, kernel, initrd))
		agents = append(agents, time.Since(t0))
		c.Close()
		stopNow(avm)
	}
	f, a := median(floors), median(agents)
	b.ReportMetric(f.Seconds(), "floor-s")
	b.ReportMetric(a.Seconds(), "agent-s")
	b.ReportMetric(a.Seconds()/f.Seconds(), "agent/floor")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func stopNow(vm *VM) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	vm.Stop(ctx)
}

// BenchmarkVMSerialPing: one yamux ping over the real virtio-serial port.
func BenchmarkVMSerialPing(b *testing.B) {
	kernel, initrd := benchImage(b)
	vm, c := bootAgent(b, bootConfig(b, kernel, initrd))
	defer stopNow(vm)
	defer c.Close()
	d, ok := vm.dialer.(*hostlink.SerialDialer)
	if !ok {
		b.Skip("the VM uses vsock, not the serial link")
	}
	for b.Loop() {
		if _, err := d.Ping(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVMControlStatus: GET /status over the channel (an HTTP request
// on a kept-alive stream).
func BenchmarkVMControlStatus(b *testing.B) {
	kernel, initrd := benchImage(b)
	vm, c := bootAgent(b, bootConfig(b, kernel, initrd))
	defer stopNow(vm)
	defer c.Close()
	for b.Loop() {
		if _, err := c.Status(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
