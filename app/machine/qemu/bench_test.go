package qemu

import (
	"context"
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
	for {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Status(actx)
		acancel()
		if err == nil {
			return vm, c
		}
		if ctx.Err() != nil {
			b.Fatalf("agent did not answer: %v", err)
		}
	}
}

// benchImage is the VM image for the benchmarks; they need root and QEMU.
func benchImage(b *testing.B) (kernel, initrd string) {
	requireRoot(b)
	needQEMU(b)
	return vmImage(b)
}

// BenchmarkBootToAgent: QEMU start until the guest agent's control API
// answers over the channel, then a forced stop (not timed). Compare with
// BenchmarkBootFloor.
func BenchmarkBootToAgent(b *testing.B) {
	kernel, initrd := benchImage(b)
	for b.Loop() {
		vm, c := bootAgent(b, bootConfig(b, kernel, initrd))
		b.StopTimer()
		c.Close()
		stopNow(vm)
		b.StartTimer()
	}
}

// BenchmarkBootFloor: the same kernel with a busybox init that powers off
// at once, QEMU start to exit: the floor of any boot.
func BenchmarkBootFloor(b *testing.B) {
	kernel, _ := benchImage(b)
	initrd := busyboxInitrd(b)
	for b.Loop() {
		vm, err := Driver{}.newVM(bootConfig(b, kernel, initrd, "berthtest=poweroff"))
		if err != nil {
			b.Fatal(err)
		}
		if err := vm.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		<-vm.Done()
	}
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
