package hostshare

import (
	"errors"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	p, err := ParseList("/Users, /tmp/,/Volumes/x")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"/Users": true, "/Users/me/src": true, "/tmp": true, "/tmp/a/../b": true,
		"/Usersx": false, "/etc": false, "/": false, "/Volumes": false, "/Volumes/x/y": true,
		"/Users/../etc": false,
	} {
		if got := p.Allowed(path); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", path, got, want)
		}
	}
	err = p.Check("/etc/x")
	var de *DeniedError
	if !errors.As(err, &de) || de.Path != "/etc/x" {
		t.Fatalf("Check(/etc/x) = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "Mounts denied: \nThe path /etc/x is not shared from the host") {
		t.Errorf("message %q", err.Error())
	}
	withSock := p.WithInternal("/var/run/docker.sock", "relative")
	if !withSock.Allowed("/var/run/docker.sock") || withSock.Allowed("/var/run") || withSock.Allowed("/var/run/docker.sock/x") || p.Allowed("/var/run/docker.sock") {
		t.Error("internal paths are allowed exactly, and only by the policy that names them")
	}
	var none Policy
	if !none.Allowed("/anything") || none.Check("/x") != nil {
		t.Error("the empty policy must allow every path")
	}
	if _, err := ParseList("relative/path"); err == nil {
		t.Error("a relative shared path must be refused")
	}
}

func FuzzParseList(f *testing.F) {
	f.Add("/Users,/tmp")
	f.Add(" , /a/../b,")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseList(s)
		if err != nil {
			return
		}
		for _, sp := range p.Paths() {
			if !p.Allowed(sp) || !p.Allowed(sp+"/x") {
				t.Fatalf("shared path %q not allowed by its own policy", sp)
			}
		}
	})
}
