//go:build linux

package engine

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/berthdesktop/berth/guestagent/api"
	"github.com/berthdesktop/berth/guestagent/image"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// otherArch is an architecture that is not this engine's.
func otherArch() string {
	if goruntime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func TestPlatformMatches(t *testing.T) {
	tests := []struct {
		want, have string
		ok         bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/x86_64", "linux/amd64", true},
		{"linux/arm64", "linux/amd64", false},
		{"linux/amd64", "linux/arm64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/aarch64", "linux/arm64", true},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/386", "linux/amd64", false},
		{"linux", "linux/" + goruntime.GOARCH, true},
		{"linux", "linux/" + otherArch(), false},
		{"windows/amd64", "linux/amd64", false},
	}
	parse := func(s string) ocispec.Platform {
		parts := strings.Split(s, "/")
		p := ocispec.Platform{OS: parts[0]}
		if len(parts) > 1 {
			p.Architecture = parts[1]
		}
		if len(parts) > 2 {
			p.Variant = parts[2]
		}
		return p
	}
	for _, tt := range tests {
		if got := platformMatches(parse(tt.want), parse(tt.have)); got != tt.ok {
			t.Errorf("platformMatches(%s, %s) = %v, want %v", tt.want, tt.have, got, tt.ok)
		}
	}
}

func TestCanRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("qemu-riscv64", "enabled\ninterpreter /usr/bin/qemu-riscv64\nflags: POCF\noffset 0\n")
	write("qemu-s390x", "enabled\ninterpreter /usr/bin/qemu-s390x\nflags: \noffset 0\n")
	write("qemu-ppc64le", "disabled\ninterpreter /usr/bin/qemu-ppc64le\nflags: F\noffset 0\n")
	tests := []struct {
		arch string
		ok   bool
	}{
		{goruntime.GOARCH, true},
		{"riscv64", true},  // emulated, interpreter fixed
		{"s390x", false},   // emulated, but the interpreter is looked up in the container's root
		{"ppc64le", false}, // disabled
		{"mips64le", false},
		{"sparc", false},
	}
	for _, tt := range tests {
		if got := canRun(ocispec.Platform{OS: "linux", Architecture: tt.arch}, dir); got != tt.ok {
			t.Errorf("canRun(%s) = %v, want %v", tt.arch, got, tt.ok)
		}
	}
}

// TestCreatePlatform drives POST /containers/create?platform= through the
// API server into the engine, as docker run --platform does.
func TestCreatePlatform(t *testing.T) {
	e, _, imgs := newTestEngine(t, "")
	amd := &image.Image{ID: digest.FromString("native"), RepoTags: []string{"native:latest"}}
	amd.Config.OS, amd.Config.Architecture = "linux", goruntime.GOARCH
	amd.Config.Config.Cmd = []string{"true"}
	foreign := &image.Image{ID: digest.FromString("foreign"), RepoTags: []string{"foreign:latest"}}
	foreign.Config.OS, foreign.Config.Architecture = "linux", "sparc64"
	foreign.Config.Config.Cmd = []string{"true"}
	imgs.mu.Lock()
	imgs.images["native"], imgs.images["foreign"] = amd, foreign
	imgs.mu.Unlock()
	srv := httptest.NewServer(api.New(api.Config{Containers: e, System: e, Exec: e}))
	defer srv.Close()
	tests := []struct {
		image, platform string
		status          int
		msg             string
	}{
		{"native", "", http.StatusCreated, ""},
		{"native", "linux/" + goruntime.GOARCH, http.StatusCreated, ""},
		{"native", "linux/" + otherArch(), http.StatusNotFound, "image with reference native was found but does not provide the specified platform (linux/" + otherArch() + ")"},
		{"foreign", "linux/sparc64", http.StatusBadRequest, "cannot run"},
		{"foreign", "linux/" + goruntime.GOARCH, http.StatusNotFound, "does not provide the specified platform"},
	}
	for _, tt := range tests {
		url := srv.URL + "/v1.51/containers/create"
		if tt.platform != "" {
			url += "?platform=" + tt.platform
		}
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"Image":"`+tt.image+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(body.Message, tt.msg) {
			t.Errorf("create %s --platform %q: %d %q, want %d %q", tt.image, tt.platform, resp.StatusCode, body.Message, tt.status, tt.msg)
		}
	}
}

// FuzzPlatform: any os/arch/variant a client sends normalizes to a fixed
// point and matches itself.
func FuzzPlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v6", "linux/aarch64/v8", "linux/armhf", "linux", "linux/arm/7", "Linux/X86_64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := strings.SplitN(s, "/", 3)
		p := ocispec.Platform{OS: parts[0]}
		if len(parts) > 1 {
			p.Architecture = parts[1]
		}
		if len(parts) > 2 {
			p.Variant = parts[2]
		}
		n := normalizePlatform(p)
		if again := normalizePlatform(n); again.OS != n.OS || again.Architecture != n.Architecture || again.Variant != n.Variant {
			t.Fatalf("normalize(%+v) = %+v, then %+v", p, n, again)
		}
		if !platformMatches(p, p) {
			t.Fatalf("%q does not match itself", s)
		}
		_ = formatPlatform(n)
	})
}
