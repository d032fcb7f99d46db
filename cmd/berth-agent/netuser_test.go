//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	mnetwork "github.com/moby/moby/api/types/network"
)

// networkInspect returns a network's inspect document.
func networkInspect(t *testing.T, e *engine, name string) mnetwork.Inspect {
	t.Helper()
	var docs []mnetwork.Inspect
	if err := json.Unmarshal([]byte(e.ok(t, "network", "inspect", name)), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("network inspect %s: %v", name, err)
	}
	return docs[0]
}

// webServer runs busybox httpd answering body on port 80.
func webServer(t *testing.T, e *engine, body string, args ...string) string {
	t.Helper()
	args = append(args, testImage, "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && exec httpd -f -p 80 -h /www")
	return e.runDetached(t, args...)
}

// TestUserNetworks drives user-defined bridge networks with the docker
// CLI: create (automatic and chosen subnets, gateway, labels, internal),
// ls with filters, inspect, name and alias resolution by the embedded DNS
// server, forwarding of other names, isolation between networks, live
// connect and disconnect, a static address, rm refused while in use,
// prune, container:NAME, --link and host-gateway; nothing is left behind.
func TestUserNetworks(t *testing.T) {
	e := needEngine(t)
	if e.peer {
		t.Skip("the peer runs without networking here")
	}
	mark := fmt.Sprintf("%d", time.Now().UnixNano()%1000000)
	front, back, closed := "front-"+mark, "back-"+mark, "closed-"+mark
	bridgesBefore, vethsBefore := countLinks(t, "br-"), countLinks(t, "veth")
	sub := fmt.Sprintf("10.198.%d", os.Getpid()%250)

	e.ok(t, "network", "create", "--label", "berthtest="+mark, front)
	e.ok(t, "network", "create", "--label", "berthtest="+mark, "--subnet", sub+".0/24", "--gateway", sub+".254", back)
	e.ok(t, "network", "create", "--label", "berthtest="+mark, "--internal", closed)
	defer func() {
		for _, n := range []string{front, back, closed} {
			e.docker(nil, "network", "rm", n)
		}
	}()
	if r := e.docker(nil, "network", "create", front); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second create of %s: %v", front, r)
	}
	names := e.ok(t, "network", "ls", "--filter", "label=berthtest="+mark, "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
	if names != strings.Join([]string{back + " bridge local", closed + " bridge local", front + " bridge local"}, "\n") {
		t.Errorf("network ls --filter label: %q", names)
	}
	if got := e.ok(t, "network", "ls", "--filter", "name="+back, "-q"); len(got) != 12 {
		t.Errorf("network ls -q --filter name: %q", got)
	}
	bi := networkInspect(t, e, back)
	if len(bi.IPAM.Config) != 1 || bi.IPAM.Config[0].Subnet.String() != sub+".0/24" || bi.IPAM.Config[0].Gateway.String() != sub+".254" || bi.Labels["berthtest"] != mark {
		t.Errorf("inspect %s: %+v", back, bi.Network)
	}
	fi := networkInspect(t, e, front)
	if len(fi.IPAM.Config) != 1 || !fi.IPAM.Config[0].Subnet.IsValid() {
		t.Fatalf("inspect %s: no subnet chosen: %+v", front, fi.IPAM)
	}

	// Name and alias on the same network.
	srv := webServer(t, e, "from-srv", "--name", "srv-"+mark, "--network", front, "--network-alias", "web-"+mark)
	get := func(network, url string, extra ...string) result {
		a := append([]string{"run", "--rm", "--network", network}, extra...)
		// The shell stays PID 1 (which ignores the timeout's SIGTERM), so
		// the timeout can end wget.
		return e.docker(nil, append(a, testImage, "sh", "-c", "timeout 5 wget -q -O - "+url+"; exit $?")...)
	}
	for _, host := range []string{"srv-" + mark, "web-" + mark, srv[:12], "srv-" + mark + "." + front} {
		var r result
		eventually(t, "reaching "+host+" by name on "+front, func() (bool, string) {
			r = get(front, "http://"+host+"/")
			return r.code == 0 && strings.TrimSpace(r.stdout) == "from-srv", r.String()
		})
	}
	resolv := e.ok(t, "run", "--rm", "--network", front, testImage, "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver 127.0.0.11") {
		t.Errorf("resolv.conf on a user network:\n%s", resolv)
	}

	// --mac-address, --hostname and --dns-search on a user network.
	out := e.ok(t, "run", "--rm", "--network", front, "--mac-address", "02:42:ac:99:00:07", "--hostname", "box-"+mark, "--dns-search", "corp.test",
		testImage, "sh", "-c", "cat /sys/class/net/eth0/address; hostname; grep box- /etc/hosts; grep search /etc/resolv.conf")
	if lines := strings.Split(out, "\n"); len(lines) != 4 || lines[0] != "02:42:ac:99:00:07" || lines[1] != "box-"+mark ||
		!strings.HasSuffix(lines[2], "\tbox-"+mark) || lines[3] != "search corp.test" {
		t.Errorf("--mac-address, --hostname, --dns-search:\n%s", out)
	}

	// Other names go to the upstream resolver: one this test runs.
	upstream := startTestResolver(t, "127.0.0.200:53", "outside-"+mark+".test.", "10.1.2.3")
	if upstream {
		out := e.ok(t, "run", "--rm", "--network", front, "--dns", "127.0.0.200", testImage, "nslookup", "outside-"+mark+".test")
		if !strings.Contains(out, "10.1.2.3") {
			t.Errorf("forwarded lookup:\n%s", out)
		}
	}

	// Isolation: from back, front's server is out of reach by address.
	srvIP := e.inspect(t, srv).NetworkSettings.Networks[front].IPAddress
	if r := get(back, "http://"+srvIP.String()+"/"); r.code == 0 {
		t.Errorf("a container on %s reached %s on %s: %v", back, srvIP, front, r)
	}
	// Live connect: srv joins back with a static address and answers
	// there by name; disconnect takes it away again.
	e.ok(t, "network", "connect", "--ip", sub+".50", "--alias", "second-"+mark, back, srv)
	if got := e.ok(t, "exec", srv, "ip", "-4", "-o", "addr", "show", "eth1"); !strings.Contains(got, sub+".50/24") {
		t.Errorf("eth1 after connect: %q", got)
	}
	if r := get(back, "http://second-"+mark+"/"); r.code != 0 || strings.TrimSpace(r.stdout) != "from-srv" {
		t.Errorf("after connect, back reaches srv by alias: %v", r)
	}
	ins := e.inspect(t, srv)
	if ep := ins.NetworkSettings.Networks[back]; ep == nil || ep.IPAddress.String() != sub+".50" {
		t.Errorf("inspect after connect: %+v", ins.NetworkSettings.Networks)
	}
	if got := networkInspect(t, e, back).Containers[ins.ID].IPv4Address.String(); got != sub+".50/24" {
		t.Errorf("network inspect Containers after connect: %q", got)
	}
	e.ok(t, "network", "disconnect", back, srv)
	if r := e.docker(nil, "exec", srv, "ip", "link", "show", "eth1"); r.code == 0 {
		t.Errorf("eth1 still there after disconnect: %v", r)
	}
	if r := get(back, "http://second-"+mark+"/"); r.code == 0 {
		t.Errorf("after disconnect, back still reaches srv: %v", r)
	}

	// Internal: no default route out.
	if out := e.ok(t, "run", "--rm", "--network", closed, testImage, "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("internal network has a default route:\n%s", out)
	}

	// In use: rm refused; prune keeps it too.
	if r := e.docker(nil, "network", "rm", front); r.code == 0 || !strings.Contains(r.stderr, "active endpoints") {
		t.Errorf("rm of a network in use: %v", r)
	}

	// container:NAME shares srv's namespace.
	out = e.ok(t, "run", "--rm", "--network", "container:srv-"+mark, testImage, "wget", "-q", "-O", "-", "http://127.0.0.1/")
	if strings.TrimSpace(out) != "from-srv" {
		t.Errorf("container:NAME reaching srv on loopback: %q", out)
	}
	if r := e.docker(nil, "run", "--rm", "--network", "container:nope-"+mark, testImage, "true"); r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("container:missing: %v", r)
	}

	// --link on the default bridge writes /etc/hosts.
	// and the legacy link variables.
	db := webServer(t, e, "from-db", "--name", "db-"+mark, "--expose", "80", "-e", "SECRET=s3")
	dbIP := e.inspect(t, db).NetworkSettings.Networks["bridge"].IPAddress.String()
	linked := e.ok(t, "run", "--rm", "--link", "db-"+mark+":dbalias", testImage, "sh", "-c",
		"grep dbalias /etc/hosts && wget -q -O - http://dbalias/ && echo $DBALIAS_NAME $DBALIAS_PORT $DBALIAS_PORT_80_TCP_ADDR $DBALIAS_PORT_80_TCP_PROTO $DBALIAS_ENV_SECRET")
	lines := strings.Split(linked, "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], db[:12]) || lines[1] != "from-db" ||
		!strings.HasSuffix(lines[2], fmt.Sprintf("/dbalias tcp://%s:80 %s tcp s3", dbIP, dbIP)) {
		t.Errorf("--link: %q", linked)
	}

	// host-gateway: a server the test runs on the bridge's address.
	gw := e.inspect(t, db).NetworkSettings.Networks["bridge"].Gateway
	l, err := net.Listen("tcp", net.JoinHostPort(gw.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "from-host") })}
	go hs.Serve(l)
	defer hs.Close()
	hostURL := fmt.Sprintf("http://host.docker.internal:%d/", l.Addr().(*net.TCPAddr).Port)
	if out := e.ok(t, "run", "--rm", "--add-host", "host.docker.internal:host-gateway", testImage, "sh", "-c", "timeout 5 wget -q -O - "+hostURL+"; exit $?"); out != "from-host" {
		t.Errorf("host.docker.internal via host-gateway: %q", out)
	}

	// Teardown: prune removes what is unused, then everything is gone.
	e.ok(t, "rm", "-f", srv, db)
	pruned := e.ok(t, "network", "prune", "-f", "--filter", "label=berthtest="+mark)
	for _, n := range []string{front, back, closed} {
		if !strings.Contains(pruned, n) {
			t.Errorf("network prune did not remove %s:\n%s\n%s", n, pruned, e.docker(nil, "network", "inspect", n).stdout)
		}
	}
	if got := e.ok(t, "network", "ls", "--filter", "label=berthtest="+mark, "-q"); got != "" {
		t.Errorf("networks left after prune: %q", got)
	}
	eventually(t, "no bridge or veth left behind", func() (bool, string) {
		b, v := countLinks(t, "br-"), countLinks(t, "veth")
		return b == bridgesBefore && v == vethsBefore, fmt.Sprintf("bridges %d (before %d), veths %d (before %d)", b, bridgesBefore, v, vethsBefore)
	})
}

// startTestResolver answers name with addr on addr:53 of loopback; it
// reports false (and the part is skipped) when the port is taken.
func startTestResolver(t *testing.T, listen, name, addr string) bool {
	t.Helper()
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		t.Logf("skipping the forwarding check: %v", err)
		return false
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		switch {
		case len(q.Question) != 1 || !strings.EqualFold(q.Question[0].Name, name):
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			rr, _ := dns.NewRR(name + " 60 IN A " + addr)
			m.Answer = append(m.Answer, rr)
		default:
			// The name exists with no record of that type.
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return true
}

// TestUserNetworkRestart: a user-defined network and a restart=always
// server on it come back after an engine restart with the same address,
// and another container reaches the server by name again.
func TestUserNetworkRestart(t *testing.T) {
	e := ownEngine(t, "netrestart")
	if e.peer {
		t.Skip("the peer runs without networking here")
	}
	sub := fmt.Sprintf("10.197.%d", os.Getpid()%250)
	e.ok(t, "network", "create", "--subnet", sub+".0/24", "keep")
	id := webServer(t, e, "kept", "--restart", "always", "--name", "kept-srv", "--network", "keep", "--ip", sub+".9")
	netID := networkInspect(t, e, "keep").ID

	if err := e.stop(); err != nil {
		t.Fatalf("stop engine: %v", err)
	}
	if err := e.start(); err != nil {
		t.Fatalf("start engine again: %v", err)
	}
	n := networkInspect(t, e, "keep")
	if n.ID != netID || len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet.String() != sub+".0/24" {
		t.Errorf("network after restart: %+v", n.Network)
	}
	e.waitState(t, id, "running")
	if ip := e.inspect(t, id).NetworkSettings.Networks["keep"].IPAddress.String(); ip != sub+".9" {
		t.Errorf("address after restart: %s", ip)
	}
	var r result
	eventually(t, "reaching kept-srv by name after the restart", func() (bool, string) {
		r = e.docker(nil, "run", "--rm", "--network", "keep", testImage, "sh", "-c", "timeout 5 wget -q -O - http://kept-srv/; exit $?")
		return r.code == 0 && strings.TrimSpace(r.stdout) == "kept", r.String()
	})
	e.ok(t, "rm", "-f", id)
	e.ok(t, "network", "rm", "keep")
}
