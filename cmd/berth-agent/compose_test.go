//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// composeProject is a three-service project: db serves a greeting (from
// its environment) out of a named volume and has a health check; web
// waits for db to be healthy, publishes a port and answers each request
// with what it fetches from db by service name; worker polls web by
// service name.
const composeProject = `version: "2.4"
services:
  db:
    image: %[1]s
    environment:
      GREETING: hello-from-db
    command: ["sh", "-c", "mkdir -p /data/www && echo \"$$GREETING\" > /data/www/index.html && exec httpd -f -v -p 8080 -h /data/www"]
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 60
  web:
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nwget -q -O - http://db:8080/\\n' > /www/cgi-bin/index && chmod 755 /www/cgi-bin/index && exec httpd -f -v -p 80 -h /www"]
    ports:
      - "127.0.0.1:%[2]d:80"
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: %[1]s
    command: ["sh", "-c", "while true; do wget -q -O - http://web/cgi-bin/index; sleep 1; done"]
    depends_on:
      - web
volumes:
  data:
`

// compose runs docker-compose (v1) on the project in dir against e.
func (e *engine) compose(dir, project string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f", filepath.Join(dir, "docker-compose.yml")}, args...)...)
	cmd.Dir = dir
	cmd.Env = e.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{"docker-compose"}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n" + err.Error()
	}
	return r
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestCompose brings the project up with Debian's docker-compose, reaches
// it from the host, reads logs and ps, and takes it down with its volume.
func TestCompose(t *testing.T) {
	e := needEngine(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed (Debian package docker-compose; make deps installs it)")
	}
	dir := t.TempDir()
	port := freePort(t)
	project := "berthcompose" + strconv.Itoa(port)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(composeProject, testImage, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.compose(dir, project, "down", "-v", "--timeout", "1") })

	if r := e.compose(dir, project, "up", "-d"); r.code != 0 {
		t.Fatalf("%v", r)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/index", port)
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(t, "web answers from the host with db's greeting", func() (bool, string) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.TrimSpace(string(b)) == "hello-from-db", fmt.Sprintf("%d %q", resp.StatusCode, b)
	})

	eventually(t, "worker's output in docker-compose logs", func() (bool, string) {
		r := e.compose(dir, project, "logs", "--no-color", "worker")
		return r.code == 0 && strings.Contains(r.stdout, "hello-from-db"), r.String()
	})

	r := e.compose(dir, project, "ps")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	for _, svc := range []string{"db", "web", "worker"} {
		found := false
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, project+"_"+svc+"_1") && strings.Contains(line, "Up") {
				found = true
			}
		}
		if !found {
			t.Errorf("docker-compose ps does not show %s up:\n%s", svc, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "(healthy)") {
		t.Errorf("docker-compose ps does not show db healthy:\n%s", r.stdout)
	}

	if r := e.compose(dir, project, "down", "-v", "--timeout", "1"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	label := "label=com.docker.compose.project=" + project
	if out := e.ok(t, "ps", "-aq", "--filter", label); out != "" {
		t.Errorf("containers left after down -v: %s", out)
	}
	if out := e.ok(t, "network", "ls", "-q", "--filter", label); out != "" {
		t.Errorf("networks left after down -v: %s", out)
	}
	if out := e.ok(t, "volume", "ls", "-q", "--filter", label); out != "" {
		t.Errorf("volumes left after down -v: %s", out)
	}
}

// healthyProject has db turn healthy only after a while and app wait for
// that (depends_on: condition: service_healthy), both on the default
// bridge, so it needs no user-defined network.
const healthyProject = `version: "2.4"
services:
  db:
    image: %[1]s
    network_mode: bridge
    command: ["sh", "-c", "sleep 2; touch /ready; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 500ms
      timeout: 2s
      retries: 60
  app:
    image: %[1]s
    network_mode: bridge
    command: ["sleep", "1000"]
    depends_on:
      db:
        condition: service_healthy
`

// TestComposeServiceHealthy checks that Compose starts a service that
// depends on another's health only once the engine reports it healthy.
func TestComposeServiceHealthy(t *testing.T) {
	e := needEngine(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed (Debian package docker-compose; make deps installs it)")
	}
	dir := t.TempDir()
	project := "berthhealthy" + strconv.Itoa(freePort(t))
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(fmt.Sprintf(healthyProject, testImage)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.compose(dir, project, "down", "-v", "--timeout", "1") })
	if r := e.compose(dir, project, "up", "-d"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	db, app := project+"_db_1", project+"_app_1"
	var health struct {
		Status string
		Log    []struct {
			End      time.Time
			ExitCode int
		}
	}
	if err := json.Unmarshal([]byte(e.ok(t, "inspect", "--format", "{{json .State.Health}}", db)), &health); err != nil {
		t.Fatal(err)
	}
	var passed time.Time
	for _, l := range health.Log {
		if l.ExitCode == 0 && (passed.IsZero() || l.End.Before(passed)) {
			passed = l.End
		}
	}
	if health.Status != "healthy" || passed.IsZero() {
		t.Fatalf("db after up -d: %+v, want healthy with a passing probe", health)
	}
	// The first passing probe ended before app started.
	g := strings.Fields(e.ok(t, "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", app))
	if len(g) != 2 || g[0] != "true" {
		t.Fatalf("app after up -d: %q", g)
	}
	at, err := time.Parse(time.RFC3339Nano, g[1])
	if err != nil {
		t.Fatal(err)
	}
	if !at.After(passed) {
		t.Fatalf("app started at %s, before db's first passing probe ended at %s", at, passed)
	}
	if r := e.compose(dir, project, "down", "-v", "--timeout", "1"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if out := e.ok(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); out != "" {
		t.Errorf("containers left after down -v: %s", out)
	}
}
