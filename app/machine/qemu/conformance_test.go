package qemu

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/hostlink"
	"github.com/berthdesktop/berth/app/hostlink/linktest"
	"github.com/berthdesktop/berth/app/machine"
)

// tunnelDialer reaches the conformance suite's services, which run on the
// host's loopback, through the real VM: each Dial opens the guest's tunnel
// port and names the service as seen from the guest (QEMU's user network
// maps slirpHost to the host's loopback). So every byte crosses the real
// channel and the real guest agent twice removed from the test.
type tunnelDialer struct {
	vm    *VM
	ports map[uint32]int // suite port -> host loopback port
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
			if _, err := io.WriteString(c, "tcp "+net.JoinHostPort(slirpHost, strconv.Itoa(hostPort))+"\n"); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}
		// While the VM restarts, wait for it as the serial dialer waits
		// for its socket.
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

// hostServices serves linktest's services on loopback TCP ports.
func hostServices(t testing.TB) map[uint32]int {
	ports := map[uint32]int{}
	for port, h := range linktest.Services() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go h(c)
			}
		}()
		ports[port] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// TestConformanceRealVM runs the channel suite through the real VM image:
// host end, virtio-serial, guest agent's yamux server, mux and tunnel.
func TestConformanceRealVM(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := vmImage(t)
	linktest.Run(t, linktest.Transport{Name: "vm", Shared: true, Setup: func(t testing.TB) (hostlink.Dialer, linktest.GuestEnd) {
		cfg := bootConfig(t, kernel, initrd)
		cfg.MemoryMiB = 512
		vm, err := Driver{}.newVM(cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := vm.Start(ctx); err != nil {
				t.Fatal(err)
			}
			c := hostlink.NewClient(vm)
			defer c.Close()
			waitAgent(t, ctx, vm, c, cfg.ConsoleLogPath)
		}
		stop := func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := vm.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		start()
		t.Cleanup(func() {
			if vm.State() == machine.StateRunning {
				stopNow(vm)
			}
		})
		none := freeLoopbackPort(t, "tcp")
		return &tunnelDialer{vm: vm, ports: hostServices(t), none: none}, linktest.GuestEnd{Stop: stop, Start: start}
	}})
}
