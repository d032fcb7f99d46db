//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// countLinks counts the machine's network interfaces whose name starts
// with prefix.
func countLinks(t *testing.T, prefix string) int {
	t.Helper()
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			n++
		}
	}
	return n
}

// TestBridgeNetwork drives the default bridge with the docker CLI: an
// address and a route, container to container, published ports from the
// machine's loopback and from a container (hairpin), -P, docker port and
// ps, a busy port refused, and nothing left behind after rm.
func TestBridgeNetwork(t *testing.T) {
	e := needEngine(t)
	if e.peer {
		t.Skip("the peer runs without a bridge network here")
	}
	veths := countLinks(t, "veth")

	out := e.ok(t, "run", "--rm", testImage, "sh", "-c", "ip -4 addr show eth0; ip route")
	if !strings.Contains(out, "inet 10.") || !strings.Contains(out, "default via 10.") {
		t.Fatalf("container network:\n%s", out)
	}

	// A web server published on a fixed port and, with -P, on an
	// ephemeral one.
	port := freePort(t)
	web := e.runDetached(t, "-p", fmt.Sprintf("%d:80", port), "-p", "127.0.0.1::8080", "--expose", "9000", testImage,
		"sh", "-c", "mkdir -p /www && echo hello-web > /www/index.html && httpd -f -p 80 -h /www")
	ins := e.inspect(t, web)
	ip := ins.NetworkSettings.Networks["bridge"].IPAddress
	gw := ins.NetworkSettings.Networks["bridge"].Gateway
	if !ip.IsValid() || !gw.IsValid() || ins.NetworkSettings.Networks["bridge"].MacAddress == nil {
		t.Fatalf("inspect NetworkSettings: %+v", ins.NetworkSettings.Networks["bridge"])
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	eventually(t, "published port answers on loopback", func() (bool, string) {
		body, err := httpGet(url)
		return err == nil && strings.TrimSpace(body) == "hello-web", fmt.Sprint(body, err)
	})
	if body, err := httpGet("http://" + ip.String() + "/"); err != nil || strings.TrimSpace(body) != "hello-web" {
		t.Fatalf("container address from the host: %q %v", body, err)
	}
	ports := e.ok(t, "port", web)
	if !strings.Contains(ports, fmt.Sprintf("80/tcp -> 0.0.0.0:%d", port)) || !strings.Contains(ports, "8080/tcp -> 127.0.0.1:") {
		t.Fatalf("docker port:\n%s", ports)
	}
	psPorts := e.ok(t, "ps", "--filter", "id="+web, "--format", "{{.Ports}}")
	if !strings.Contains(psPorts, fmt.Sprintf("0.0.0.0:%d->80/tcp", port)) || !strings.Contains(psPorts, "9000/tcp") {
		t.Fatalf("ps ports: %q", psPorts)
	}
	// Another container reaches it by address, and through the published
	// port on the gateway (hairpin NAT).
	for _, target := range []string{ip.String() + ":80", fmt.Sprintf("%s:%d", gw, port)} {
		out := e.ok(t, "run", "--rm", testImage, "wget", "-qO-", "http://"+target+"/")
		if strings.TrimSpace(out) != "hello-web" {
			t.Fatalf("wget %s from a container: %q", target, out)
		}
	}
	// The port is taken while the container lives.
	code, r := e.code("run", "--rm", "-p", fmt.Sprintf("%d:80", port), testImage, "true")
	if code == 0 || !strings.Contains(r.stderr, "port is already allocated") {
		t.Fatalf("second publish of port %d: exit %d: %s", port, code, r.stderr)
	}

	// -P publishes the exposed ports.
	all := e.runDetached(t, "-P", "--expose", "7000", testImage, "sleep", "300")
	if p := e.ok(t, "port", all, "7000"); !strings.HasPrefix(p, "0.0.0.0:") {
		t.Fatalf("docker port -P: %q", p)
	}

	// Outbound: a container reaches a server on the engine's side of the
	// bridge (the gateway address), its traffic leaving through NAT rules.
	l, err := net.Listen("tcp4", gw.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Read the whole request first: closing with unread bytes
			// would reset the connection under the client's read.
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nfrom-host\n")
			c.Close()
		}
	}()
	out = e.ok(t, "run", "--rm", testImage, "wget", "-qO-", "http://"+l.Addr().String()+"/")
	if strings.TrimSpace(out) != "from-host" {
		t.Fatalf("container to host: %q", out)
	}

	// --network none has loopback only; host shares the engine's.
	if out := e.ok(t, "run", "--rm", "--network", "none", testImage, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("--network none has eth0:\n%s", out)
	}

	e.ok(t, "rm", "-f", web, all)
	eventually(t, "published port closed after rm", func() (bool, string) {
		_, err := httpGet(url)
		return err != nil, fmt.Sprint(err)
	})
	if n := countLinks(t, "veth"); n != veths {
		t.Fatalf("veths: %d before, %d after", veths, n)
	}
}

// TestUDPPublishedPort sends datagrams to a published UDP port on the
// machine's loopback and gets the container's answers back through it.
func TestUDPPublishedPort(t *testing.T) {
	e := needEngine(t)
	if e.peer {
		t.Skip("the peer runs without a bridge network here")
	}
	// busybox has no UDP server: a small static one, built here.
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "udpecho"), "./testdata/udpecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the UDP echo server: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+testImage+"\nCOPY udpecho /udpecho\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "berth-test/udpecho:latest"
	e.ok(t, "build", "-q", "-t", tag, dir)
	defer e.docker(nil, "rmi", "-f", tag)

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	id := e.runDetached(t, "-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", port), tag, "/udpecho", "5353")
	if got := e.ok(t, "port", id); got != fmt.Sprintf("5353/udp -> 127.0.0.1:%d", port) {
		t.Errorf("docker port: %q", got)
	}
	conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, "an answer through the published UDP port", func() (bool, string) {
		if _, err := conn.Write([]byte("ping-udp")); err != nil {
			return false, err.Error()
		}
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		return err == nil && string(buf[:n]) == "echo:ping-udp", fmt.Sprintf("%q %v", buf[:n], err)
	})
}
