package dockercli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func dockerCLI(t *testing.T) string {
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Skipf("docker CLI not installed: %v", err)
	}
	return p
}

// runDocker runs the real CLI with DOCKER_CONFIG=dir.
func runDocker(t *testing.T, dir string, args ...string) (string, error) {
	cmd := exec.Command(dockerCLI(t), args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir, "DOCKER_HOST=", "DOCKER_CONTEXT=")
	out, err := cmd.Output()
	return string(out), err
}

func TestContextWithRealCLI(t *testing.T) {
	tests := []struct {
		name    string
		config  string // existing config.json, "" for none
		use     bool
		wantCur string
	}{
		{"fresh", "", false, "default"},
		{"keeps other settings", `{"auths":{"registry.test":{"auth":"eDp5"}},"currentContext":"default"}`, false, "default"},
		{"use", `{"auths":{}}`, true, ContextName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o600)
			}
			sock := filepath.Join(t.TempDir(), "run", "docker.sock")
			if err := EnsureContext(dir, HostURL(sock)); err != nil {
				t.Fatal(err)
			}
			if tc.use {
				if err := Use(dir, ContextName); err != nil {
					t.Fatal(err)
				}
			}
			out, err := runDocker(t, dir, "context", "inspect", ContextName)
			if err != nil {
				t.Fatalf("docker context inspect: %v", err)
			}
			var got []struct {
				Name      string
				Endpoints map[string]struct{ Host string }
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("inspect output: %v\n%s", err, out)
			}
			if len(got) != 1 || got[0].Name != ContextName || got[0].Endpoints["docker"].Host != "unix://"+sock {
				t.Fatalf("inspect: %+v", got)
			}
			cur, err := runDocker(t, dir, "context", "show")
			if err != nil || strings.TrimSpace(cur) != tc.wantCur {
				t.Fatalf("current context %q, %v; want %q", cur, err, tc.wantCur)
			}
			if strings.Contains(tc.config, "auths") {
				b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
				var cfg map[string]json.RawMessage
				if err := json.Unmarshal(b, &cfg); err != nil || cfg["auths"] == nil {
					t.Fatalf("config.json lost its auths: %s", b)
				}
			}
		})
	}
}

func TestUpdateAndRemove(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureContext(dir, "unix:///a.sock"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureContext(dir, "unix:///b.sock"); err != nil {
		t.Fatal(err)
	}
	if h, err := ContextHost(dir); err != nil || h != "unix:///b.sock" {
		t.Fatalf("host %q, %v", h, err)
	}
	if out, err := runDocker(t, dir, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}", ContextName); err != nil || strings.TrimSpace(out) != "unix:///b.sock" {
		t.Fatalf("CLI sees %q, %v", out, err)
	}
	if err := Use(dir, ContextName); err != nil {
		t.Fatal(err)
	}
	if err := RemoveContext(dir); err != nil {
		t.Fatal(err)
	}
	if cur, err := CurrentContext(dir); err != nil || cur != "" {
		t.Fatalf("current context after remove %q, %v", cur, err)
	}
	if _, err := runDocker(t, dir, "context", "inspect", ContextName); err == nil {
		t.Fatal("CLI still finds the context after RemoveContext")
	}
}

func TestConfigDir(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", "/srv/dc")
	if d, _ := ConfigDir(); d != "/srv/dc" {
		t.Fatalf("DOCKER_CONFIG ignored: %q", d)
	}
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := ConfigDir(); d != "/home/u/.docker" {
		t.Fatalf("default %q", d)
	}
}

func TestBrokenConfigIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600)
	if err := Use(dir, ContextName); err == nil {
		t.Fatal("Use overwrote an unreadable config.json")
	}
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{},"currentContext":"x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
		_, rerr := CurrentContext(dir)
		if err := Use(dir, ContextName); err != nil {
			if rerr == nil && !strings.Contains(err.Error(), "config") {
				t.Fatalf("Use failed on a readable config: %v", err)
			}
			return
		}
		if cur, err := CurrentContext(dir); err != nil || cur != ContextName {
			t.Fatalf("after Use: %q, %v", cur, err)
		}
	})
}
