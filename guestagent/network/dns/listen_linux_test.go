package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var embeddedAddr = netip.MustParseAddrPort("127.0.0.11:53")

func TestListenBadNamespace(t *testing.T) {
	_, err := Listen("/nonexistent/ns/net", embeddedAddr, Config{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Listen in a namespace that does not exist: %v, want ErrNotExist", err)
	}
}

// newNetns makes a network namespace, its lo down as a new one's is, and
// returns its handle; the test's goroutine stays in its own.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making a network namespace needs root")
	}
	type made struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan made, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{err: fmt.Errorf("get the test's namespace: %w", err)}
			return
		}
		defer own.Close()
		ns, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- made{err: fmt.Errorf("new network namespace: %w", err)}
			return
		}
		if err := netns.Set(own); err != nil {
			// The thread dies with the goroutine.
			ch <- made{ns: ns, err: fmt.Errorf("return to the test's namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- made{ns: ns}
	}()
	m := <-ch
	if errors.Is(m.err, unix.EPERM) {
		t.Skipf("no network namespaces here: %v", m.err)
	}
	if m.err != nil {
		t.Fatal(m.err)
	}
	t.Cleanup(func() { m.ns.Close() })
	return m.ns
}

func nsPath(ns netns.NsHandle) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
}

// dialIn makes a socket connected to addr inside ns: it stays there.
func dialIn(t *testing.T, ns netns.NsHandle, network string, addr netip.AddrPort) net.Conn {
	t.Helper()
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- dialed{err: err}
			return
		}
		defer own.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- dialed{err: fmt.Errorf("enter the test namespace: %w", err)}
			return
		}
		var d dialed
		switch network {
		case "udp":
			d.c, d.err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
		default:
			d.c, d.err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(addr))
		}
		if err := netns.Set(own); err != nil {
			if d.c != nil {
				d.c.Close()
			}
			ch <- dialed{err: fmt.Errorf("return to the test's namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- d
	}()
	d := <-ch
	if d.err != nil {
		t.Fatalf("dial %s %s in the test namespace: %v", network, addr, d.err)
	}
	return d.c
}

// askIn asks q of the server at addr from inside ns.
func askIn(t *testing.T, ns netns.NsHandle, network string, addr netip.AddrPort, q *dns.Msg) *dns.Msg {
	t.Helper()
	co := &dns.Conn{Conn: dialIn(t, ns, network, addr)}
	defer co.Close()
	co.SetDeadline(time.Now().Add(5 * time.Second))
	if err := co.WriteMsg(q); err != nil {
		t.Fatalf("%s query %v: %v", network, q.Question, err)
	}
	r, err := co.ReadMsg()
	if err != nil {
		t.Fatalf("%s reply to %v: %v", network, q.Question, err)
	}
	if r.Id != q.Id {
		t.Errorf("reply ID %d, query's %d", r.Id, q.Id)
	}
	return r
}

func TestListenInNamespace(t *testing.T) {
	ns := newNetns(t)
	// The upstream listens on the test's own 127.0.0.1: the namespace's
	// 127.0.0.1 has nothing there, so an answer proves the forward left
	// from the engine's namespace.
	up := startUpstream(t, zone(testZone))
	cfg := Config{Names: testNames(), Upstreams: []netip.AddrPort{up.addr}, Logger: quietLogger()}
	s, err := Listen(nsPath(ns), embeddedAddr, cfg)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer s.Close()

	for _, network := range []string{"udp", "tcp"} {
		r := askIn(t, ns, network, embeddedAddr, query("web.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 2 {
			t.Errorf("%s: %v, want the two addresses of web", network, r.Answer)
		}
		r = askIn(t, ns, network, embeddedAddr, query("example.test.", dns.TypeA))
		wantRcode(t, r, dns.RcodeSuccess)
		if len(r.Answer) != 1 {
			t.Errorf("%s: forwarded %v, want the upstream's address", network, r.Answer)
		}
	}
	// Nothing listens on 127.0.0.11 in the test's own namespace.
	c, err := net.DialTimeout("tcp4", embeddedAddr.String(), time.Second)
	if err == nil {
		c.Close()
		t.Error("the server listens in the caller's namespace too")
	}

	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close again: %v", err)
	}
	// Close released both ports: listening again works, and serves.
	s, err = Listen(nsPath(ns), embeddedAddr, cfg)
	if err != nil {
		t.Fatalf("listen again after Close: %v", err)
	}
	defer s.Close()
	wantRcode(t, askIn(t, ns, "udp", embeddedAddr, query("db.", dns.TypeA)), dns.RcodeSuccess)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestListenTwiceFails(t *testing.T) {
	ns := newNetns(t)
	s, err := Listen(nsPath(ns), embeddedAddr, Config{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer s.Close()
	if s2, err := Listen(nsPath(ns), embeddedAddr, Config{Logger: quietLogger()}); !errors.Is(err, unix.EADDRINUSE) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("a second Listen on the same address: %v, want EADDRINUSE", err)
	}
}
