package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/berthdesktop/berth/app/forward"
	"github.com/berthdesktop/berth/app/hostlink"
)

// The guest reaches the host's loopback at this address through QEMU's
// user network: a host server there stands in for a container's port, so
// the whole published-port path (host listener, channel, guest tunnel)
// runs without the engine.
const slirpHost = "10.0.2.2"

func hostEcho(t testing.TB) int {
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
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func hostUDPEcho(t testing.TB) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func freeLoopbackPort(t testing.TB, proto string) int {
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestBootPublishedPorts: published TCP and UDP ports through the real VM.
func TestBootPublishedPorts(t *testing.T) {
	requireRoot(t)
	needQEMU(t)
	kernel, initrd := vmImage(t)
	cfg := bootConfig(t, kernel, initrd)
	cfg.MemoryMiB = 512
	vm, err := Driver{}.newVM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer stopVM(t, vm)
	c := hostlink.NewClient(vm)
	defer c.Close()
	waitAgent(t, ctx, vm, c, cfg.ConsoleLogPath)

	ports := forward.NewPorts(vm, nil)
	defer ports.Close()
	tcpPort, udpPort := freeLoopbackPort(t, "tcp"), freeLoopbackPort(t, "udp")
	for _, e := range []hostlink.PortEvent{
		{Type: "port", Action: "published", Proto: "tcp", HostIP: "127.0.0.1", HostPort: tcpPort, Target: net.JoinHostPort(slirpHost, strconv.Itoa(hostEcho(t)))},
		{Type: "port", Action: "published", Proto: "udp", HostIP: "127.0.0.1", HostPort: udpPort, Target: net.JoinHostPort(slirpHost, strconv.Itoa(hostUDPEcho(t)))},
	} {
		if err := ports.Apply(e); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := bytes.Repeat([]byte("berth"), 200000) // 1 MB
	go func() {
		conn.Write(msg)
		conn.(*net.TCPConn).CloseWrite()
	}()
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil || n != int64(len(msg)) {
		t.Fatalf("tcp echo through the VM: %d bytes, %v", n, err)
	}
	if want := sha256.Sum256(msg); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("tcp echo through the VM differs")
	}

	u, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(udpPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	buf := make([]byte, 2048)
	var got string
	for range 20 {
		u.Write([]byte("datagram through the vm"))
		u.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := u.Read(buf); err == nil {
			got = string(buf[:n])
			break
		}
	}
	if got != "datagram through the vm" {
		t.Fatalf("udp echo through the VM: %q", got)
	}
}

// hostSink reads each connection to EOF, then closes it.
func hostSink(b testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkVMTunnelThroughput moves 32 MiB host to "container" (a host
// sink reached from the guest through QEMU's user network): through a
// published port's host listener, and straight through the channel's
// tunnel port, so the two can be compared in one run.
func BenchmarkVMTunnelThroughput(b *testing.B) {
	kernel, initrd := benchImage(b)
	cfg := bootConfig(b, kernel, initrd)
	cfg.MemoryMiB = 512
	vm, c := bootAgent(b, cfg)
	defer stopNow(vm)
	defer c.Close()
	target := net.JoinHostPort(slirpHost, strconv.Itoa(hostSink(b)))
	ports := forward.NewPorts(vm, nil)
	defer ports.Close()
	pub := freeLoopbackPort(b, "tcp")
	if err := ports.Apply(hostlink.PortEvent{Type: "port", Action: "published", Proto: "tcp", HostIP: "127.0.0.1", HostPort: pub, Target: target}); err != nil {
		b.Fatal(err)
	}
	const total = 32 << 20
	push := func(conn net.Conn) {
		defer conn.Close()
		if _, err := io.Copy(conn, io.LimitReader(zeros{}, total)); err != nil {
			b.Fatal(err)
		}
		conn.(interface{ CloseWrite() error }).CloseWrite()
		io.Copy(io.Discard, conn)
	}
	b.Run("published", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pub)))
			if err != nil {
				b.Fatal(err)
			}
			push(conn)
		}
	})
	b.Run("channel", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			conn, err := vm.Dial(context.Background(), 1025)
			if err != nil {
				b.Fatal(err)
			}
			io.WriteString(conn, "tcp "+target+"\n")
			push(conn)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
